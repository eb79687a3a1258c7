"""build_dataset: decoder -> views -> one generic tf.data pipeline.

The batch-dict contract between data and methods:

* training batches hold the view keys of the method's
  :class:`~tf_contrastive.core.views.ViewSpec` (``image`` for one
  view; ``view_0``/``view_1`` for two augmentations; ``view_l``/``view_ab`` for
  CMC's channel splits), float32 [B, H, W, C] in about [0, 1], plus
  ``index`` (int32 instance id, the memory-bank row) and ``label`` (int32,
  0-based, checked in range by :mod:`tf_contrastive.data.labels`; -1 for a
  dataset declared unlabeled);
* evaluation batches hold ``image`` (center view), ``label`` and ``index``.

Audio (``dataset.name = "audio"``, view kind ``waveform``; see
:mod:`tf_contrastive.data.audio`) replaces ``image`` by ``waveform``, float32
[B, W] in [-1, 1) with W = ``dataset.audio_window`` samples, and adds ``phones``,
int32 [B, W // 160], the phone label of each 10 ms frame of the window (-1 where
unknown or past the end of the utterance); ``label`` is the 0-based speaker.
Training windows are random, evaluation windows centred. :func:`input_key` names
the model-input key of a config.

Training order and augmentation are pure functions of (config seed, epoch,
position), so a run restarted at epoch e reads exactly what an uninterrupted
run reads from epoch e on. Each epoch is exactly ``steps_per_epoch`` batches
cut from its own pass (:func:`_epochs`), so no epoch runs into the next one's.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import numpy as np
import tensorflow as tf

from tf_contrastive.core import color, views
from tf_contrastive.core.config import ConfigError
from tf_contrastive.data import arrays, audio, augment, imagenet, labels, multiview, records

# What each dataset family yields (core.views sources); the default is images.
_DATASET_SOURCE = {"multiview": views.NAMED_VIEWS, "audio": views.WAVEFORM}
_EPOCHS_FOREVER = 1 << 30
# Refill pass s of epoch e is read as epoch e + s * _REFILL: its own shard order,
# shuffle and crops, never those of a real epoch (< _EPOCHS_FOREVER).
_REFILL = 1 << 40
AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a method needs to know about its data before building a model.

    ``image_shape`` is the shape of one model input without the batch axis:
    (H, W, C) for images, (window,) for audio. ``num_classes`` counts speakers
    for audio (0 for a dataset declared unlabeled). ``train_shards`` holds the
    training records of each shard (sorted, after ``train_limit``; empty for
    in-memory data), for :func:`steps_per_epoch`. ``eval_off`` says why there
    is no kNN / evaluation figure ("" when there is one).
    """

    num_train: int
    num_eval: int
    num_classes: int
    image_shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    labeled: bool = True
    train_shards: tuple[int, ...] = ()
    eval_off: str = ""
    # What each example yields (a core.views source): images, waveforms or named views.
    source: str = views.IMAGE


@functools.lru_cache(maxsize=8)
def _cached_arrays(name: str, split: str, data_dir: str, limit: int, classes: tuple):
    images, labels = arrays.load_arrays(name, split, data_dir)
    if classes:
        keep = np.isin(labels, classes)
        if not keep.any():
            raise ValueError(f"config.dataset.train_classes: {classes} matches no {split} "
                             f"example of {name}")
        images, labels = images[keep], labels[keep]
    if limit:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def _array_key(ds_cfg, split: str) -> tuple:
    limit = ds_cfg.train_limit if split == "train" else ds_cfg.eval_limit
    classes = tuple(int(c) for c in ds_cfg.train_classes) if split == "train" else ()
    return ds_cfg.name, split, ds_cfg.data_dir, int(limit), classes


def _arrays(ds_cfg, split: str):
    """The split's arrays; the training split keeps only ``train_classes`` if set.
    Labels are -1 when the dataset is declared unlabeled."""
    images, y = _cached_arrays(*_array_key(ds_cfg, split))
    if not ds_cfg.labeled:
        y = np.full_like(y, -1)
    return images, y


@functools.lru_cache(maxsize=8)
def _array_info(train_key: tuple, eval_key: tuple, size: int, declared: int,
                labeled: bool) -> DatasetInfo:
    x_train, y_train = _cached_arrays(*train_key)
    x_eval, y_eval = _cached_arrays(*eval_key)
    x = x_train.astype(np.float32) / 255.0
    num_classes = 0
    if labeled:
        # Both splits: a training label beyond the test split's would lose its kNN votes.
        num_classes = declared or int(max(y_train.max(), y_eval.max())) + 1
        source = "config.dataset.num_classes" if declared else "the labels"
        labels.check_array_labels(y_train, num_classes, f"{train_key[0]} train", source)
        labels.check_array_labels(y_eval, num_classes, f"{train_key[0]} test", source)
    return DatasetInfo(len(x_train), len(x_eval), num_classes,
                       (size, size, x_train.shape[-1]), (float(x.mean()),), (float(x.std()),),
                       labeled=labeled,
                       eval_off="" if labeled else "config.dataset.labeled=False")


@functools.lru_cache(maxsize=8)
def _imagenet_index(data_dir: str, split: str, skip_bad: bool = False):
    files = imagenet.shard_files(data_dir, split)
    offsets, total = imagenet.shard_offsets(files, skip_bad)
    return files, offsets, total


def _has_split(data_dir: str, split: str) -> bool:
    try:
        imagenet.shard_files(data_dir, split)
    except FileNotFoundError:
        return False
    return True


def _record_shards(ds_cfg) -> tuple[tuple[int, ...], int]:
    """(training records of each shard after train_limit, validation records; 0 when
    the data dir has no validation shards)."""
    _, offsets, total = _imagenet_index(ds_cfg.data_dir, "train", ds_cfg.skip_bad_records)
    ends = offsets[1:] + [total]
    # Multi-view records do not take train_limit / eval_limit.
    limited = ds_cfg.name != "multiview"
    limit = int(ds_cfg.train_limit) if limited else 0
    shards = tuple(min(end, limit) - min(start, limit) if limit else end - start
                   for start, end in zip(offsets, ends, strict=True))
    n_eval = 0
    if _has_split(ds_cfg.data_dir, "validation"):
        _, _, n_eval = _imagenet_index(ds_cfg.data_dir, "validation", ds_cfg.skip_bad_records)
        if limited and ds_cfg.eval_limit:
            n_eval = min(n_eval, int(ds_cfg.eval_limit))
    return shards, n_eval


def _eval_off(spec: labels.LabelSpec, n_eval: int, data_dir: str) -> str:
    if not spec.labeled:
        return "config.dataset.labeled=False"
    if not n_eval:
        return f"no validation shards in {data_dir}"
    return ""


def label_spec(ds_cfg) -> labels.LabelSpec:
    """How the configured TFRecord dataset's stored labels map to classes."""
    speakers = None
    if ds_cfg.name == "audio":
        speakers = len(audio.read_metadata(ds_cfg.data_dir)["speakers"])
    return labels.resolve(ds_cfg, speakers)


def describe(ds_cfg) -> DatasetInfo:
    """Sizes, classes and input shape of the configured dataset."""
    size = int(ds_cfg.image_size)
    if ds_cfg.name in labels.SCHEMA_BASE:
        window = _audio_window(ds_cfg) if ds_cfg.name == "audio" else 0
        spec = label_spec(ds_cfg)
        shards, n_eval = _record_shards(ds_cfg)
        if ds_cfg.name == "imagenet":
            shape, mean, std = (size, size, 3), augment.IMAGENET_MEAN, augment.IMAGENET_STD
        elif ds_cfg.name == "multiview":
            c = int(ds_cfg.view_channels[0])
            shape, mean, std = (size, size, c), (0.5,) * c, (0.25,) * c
        else:
            shape, mean, std = (window,), (0.0,), (1.0,)
        return DatasetInfo(sum(shards), n_eval, spec.num_classes, shape, mean, std,
                           labeled=spec.labeled, train_shards=shards,
                           eval_off=_eval_off(spec, n_eval, ds_cfg.data_dir),
                           source=_DATASET_SOURCE.get(ds_cfg.name, views.IMAGE))
    return _array_info(_array_key(ds_cfg, "train"), _array_key(ds_cfg, "test"), size,
                       int(ds_cfg.num_classes), bool(ds_cfg.labeled))


def _audio_window(ds_cfg) -> int:
    window = int(ds_cfg.audio_window)
    if window < audio.FRAME or window % audio.FRAME:
        raise ValueError(f"config.dataset.audio_window: must be a positive multiple of "
                         f"{audio.FRAME} samples (10 ms at 16 kHz), got {window}")
    return window


def input_key(cfg) -> str:
    """The batch key holding the model input: ``waveform`` for audio, else ``image``."""
    return "waveform" if cfg.dataset.name == "audio" else "image"


def steps_per_epoch(cfg, info: DatasetInfo, num_pipelines: int = 1) -> int:
    """Configured steps, or one pass over the training set with the remainder dropped.

    With several input pipelines reading TFRecords, each reads its own shards
    (every ``num_pipelines``-th) and all must feed the same number of batches:
    a pass is then as many steps as the pipeline with the fewest records can
    feed, and the others leave their surplus out of that epoch (which records
    changes with each epoch's shard order and shuffle).
    """
    batch = cfg.train.batch_size
    fits = info.num_train // batch
    if num_pipelines > 1 and info.train_shards:
        per_pipeline = batch // num_pipelines
        fits = min(sum(info.train_shards[p::num_pipelines]) // per_pipeline
                   for p in range(num_pipelines))
    if cfg.train.steps_per_epoch:
        if cfg.train.steps_per_epoch > fits and num_pipelines > 1:
            raise ConfigError(f"config.train.steps_per_epoch: {cfg.train.steps_per_epoch} "
                              f"steps of {batch} exceed one pass of the input pipeline with "
                              f"the fewest records ({num_pipelines} pipelines); use at most "
                              f"{fits} (or 0)")
        return int(cfg.train.steps_per_epoch)
    if fits < 1:
        raise ValueError(f"config.train.batch_size: {batch} is larger than the "
                         f"{info.num_train} training examples" + (
                             f" can feed through each of {num_pipelines} input pipelines"
                             if num_pipelines > 1 else ""))
    return fits


def _epochs(cfg, one_pass, start_epoch, batches: int) -> tf.data.Dataset:
    """Epochs ``start_epoch``, ... of exactly ``batches`` batches each, epoch e cut
    from ``one_pass(e)`` (a pure function of e).

    With ``dataset.skip_bad_records`` a pass may come out short; the epoch is then
    completed from refill passes over the same records, each with its own order
    and crops (so those ids appear twice in that epoch), and the next epoch still
    starts on its own pass.
    """
    def one_epoch(epoch):
        ds = one_pass(epoch)
        if cfg.dataset.skip_bad_records:
            refills = tf.data.Dataset.range(1, batches + 1, output_type=tf.int64)
            ds = ds.concatenate(refills.flat_map(lambda s: one_pass(epoch + s * _REFILL)))
        return ds.take(batches)

    return tf.data.Dataset.range(start_epoch, _EPOCHS_FOREVER).flat_map(one_epoch)


def _pipelines(ctx: tf.distribute.InputContext | None) -> tuple[int, int, int]:
    """(number of input pipelines, this pipeline's id, replicas it feeds)."""
    if ctx is None:
        return 1, 0, 1
    return (ctx.num_input_pipelines, ctx.input_pipeline_id,
            max(ctx.num_replicas_in_sync // ctx.num_input_pipelines, 1))


def _batch_seed(cfg, epoch, batch_no, pipeline_id: int) -> tf.Tensor:
    a = tf.cast(cfg.seed, tf.int64) * 1_000_003 + tf.cast(epoch, tf.int64)
    b = tf.cast(batch_no, tf.int64) * 4096 + pipeline_id
    return tf.stack([a, b])


def _finish_views(cfg, view_spec: views.ViewSpec, crops: list[tf.Tensor], seed: tf.Tensor) -> dict:
    """Photometric augmentation of each (already cropped) view batch, or the split."""
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, num=len(crops)))
    if view_spec.patches:
        p = view_spec.patches
        return {view_spec.keys[0]: augment.random_patches(crops[0], seeds[0], p.size, p.stride,
                                                     p.jitter, cfg.augment)}
    if view_spec.split is not None:
        if view_spec.jitter:
            ready = [augment.photometric(c, s, cfg.augment)
                     for c, s in zip(crops, seeds, strict=True)]
        else:
            ready = [augment.random_flip(c, s) if cfg.augment.flip else c
                     for c, s in zip(crops, seeds, strict=True)]
        if len(ready) == 1:
            return dict(zip(view_spec.keys, color.SPLITS[view_spec.split](ready[0]), strict=True))
        # One crop per view: view i is the i-th part of the split of crop i.
        return {key: color.SPLITS[view_spec.split](c)[i]
                for i, (key, c) in enumerate(zip(view_spec.keys, ready, strict=True))}
    return {key: augment.photometric(crop, s, cfg.augment)
            for key, crop, s in zip(view_spec.keys, crops, seeds, strict=True)}


def _array_train(cfg, view_spec, ctx, start_epoch, global_batch, steps):
    images, labels = _arrays(cfg.dataset, "train")
    n = len(images)
    images_t = tf.constant(images)
    labels_t = tf.constant(labels)
    n_pipe, pipe_id, _ = _pipelines(ctx)
    per_replica = ctx.get_per_replica_batch_size(global_batch) if ctx else global_batch
    size = cfg.dataset.image_size
    scale = (cfg.augment.crop_scale_min, cfg.augment.crop_scale_max)
    n_views = view_spec.crops

    def one_epoch(epoch):
        noise = tf.random.stateless_uniform([n], tf.stack([tf.cast(cfg.seed, tf.int64), epoch]))
        order = tf.cast(tf.argsort(noise), tf.int32)[: steps * global_batch]
        ds = tf.data.Dataset.from_tensor_slices(order).shard(n_pipe, pipe_id)
        ds = ds.batch(per_replica, drop_remainder=True).enumerate()

        def make(batch_no, ids):
            seed = _batch_seed(cfg, epoch, batch_no, pipe_id)
            crop_seeds = tf.unstack(tf.random.experimental.stateless_split(seed, n_views + 1))
            x = tf.cast(tf.gather(images_t, ids), tf.float32) / 255.0
            crops = [augment.random_resized_crop(x, s, size, scale) for s in crop_seeds[1:]]
            out = _finish_views(cfg, view_spec, crops, crop_seeds[0])
            out["index"] = ids
            out["label"] = tf.gather(labels_t, ids)
            return out

        return ds.map(make, num_parallel_calls=AUTOTUNE)

    return tf.data.Dataset.range(start_epoch, _EPOCHS_FOREVER).flat_map(one_epoch)


def _record_reader(cfg, num_ids: int, count: bool):
    """(path, first id, records) -> that shard's (serialized, id, position, path); a
    record that cannot be read or decoded is named, and skipped if configured."""
    skip_bad = cfg.dataset.skip_bad_records
    # The full JPEG decode check costs a reduced-size decode per record (figures in
    # WORKSPACE.md); skipping needs it, and dataset.check_jpegs=False turns it off
    # otherwise (a bad body is then cropped around or fails in the crop).
    check = (imagenet.jpeg_check
             if (skip_bad or cfg.dataset.check_jpegs) and cfg.dataset.name == "imagenet"
             else None)
    adder = _skip_adder(cfg, count)

    def read(path, offset, n):
        return records.read_shard(path, offset, n, skip_bad, check, adder, num_ids)
    return read


def name_undecodable(cfg, error: Exception) -> str | None:
    """What a JPEG decode error raised mid-run was: the shards and records that do not
    decode, found by re-reading the training and validation shards with the full decode
    check (``imagenet.jpeg_check``); None when ``error`` is no JPEG decode error of
    ImageNet-schema data, or the scan finds nothing.

    With ``dataset.check_jpegs=False`` (and no skipping) the check does not run as
    records are read, so a JPEG with an intact header and a corrupt body fails only in
    the crop, where the record is no longer known. Re-reading costs one reduced-size
    decode per record, paid only on this error path.
    """
    text = str(error)
    if (cfg.dataset.name != "imagenet" or "jpeg" not in text.lower()
            or "bad TFRecord data:" in text):  # the last: the check has named it already
        return None
    found = []
    for split in ("train", "validation"):
        if split == "validation" and not _has_split(cfg.dataset.data_dir, split):
            continue
        files, offsets, total = _imagenet_index(cfg.dataset.data_dir, split,
                                                cfg.dataset.skip_bad_records)
        counts = [b - a for a, b in zip(offsets, offsets[1:] + [total], strict=True)]
        # Shards one by one: read_shard's error names the first bad record of a shard.
        for path, first, n in zip(files, offsets, counts, strict=True):
            ds = records.read_shard(tf.constant(path), tf.constant(first, tf.int64),
                                    tf.constant(n, tf.int64), False, imagenet.jpeg_check)
            try:
                for _ in ds.batch(256).prefetch(2):
                    pass
            except tf.errors.InvalidArgumentError as scan_error:
                named = re.search(r"bad TFRecord data:\]? \[?([^\]\n]*)", scan_error.message)
                found.append(named.group(1) if named else f"{path}: {scan_error.message}")
    if not found:
        return None
    return ("a JPEG did not decode: " + "; ".join(found)
            + " (set --config.dataset.skip_bad_records=True to skip such records)")


def _imagenet_records(cfg, split, ctx, epoch=None):
    """(serialized, id, position, path) for this pipeline's shards.

    Shards are split between input pipelines by position in the sorted list
    (stable); with ``epoch`` given, this pipeline's shards are read in a
    stateless per-epoch random order.
    """
    files, offsets, total = _imagenet_index(cfg.dataset.data_dir, split,
                                            cfg.dataset.skip_bad_records)
    counts = [b - a for a, b in zip(offsets, offsets[1:] + [total], strict=True)]
    n_pipe, pipe_id, _ = _pipelines(ctx)
    if len(files) < n_pipe:
        raise ValueError(f"{cfg.dataset.data_dir}: {len(files)} {split} shards cannot be "
                         f"split across {n_pipe} input pipelines")
    files_t = tf.constant(files[pipe_id::n_pipe])
    offsets_t = tf.constant(offsets[pipe_id::n_pipe], tf.int64)
    counts_t = tf.constant(counts[pipe_id::n_pipe], tf.int64)
    if epoch is not None:
        key = tf.stack([tf.cast(cfg.seed, tf.int64), tf.cast(epoch, tf.int64)])
        order = tf.argsort(tf.random.stateless_uniform([len(files[pipe_id::n_pipe])], key))
        files_t, offsets_t, counts_t = (tf.gather(t, order)
                                        for t in (files_t, offsets_t, counts_t))
    ds = tf.data.Dataset.from_tensor_slices((files_t, offsets_t, counts_t))
    return ds.interleave(_record_reader(cfg, total, count=epoch is not None),
                         cycle_length=min(16, len(files)), num_parallel_calls=AUTOTUNE,
                         deterministic=True)


_SKIPPED: list[tf.Variable] = []


def skipped_records() -> tf.Variable:
    """How many bad training records this process's pipelines have skipped so far
    (``dataset.skip_bad_records``; each is also logged with its file and position).

    Created on first use, outside any function or strategy scope; the trainer
    creates it before building the model. Counted as records are read, so it
    runs ahead of training by the prefetched batches.
    """
    if not _SKIPPED:
        with tf.init_scope():
            _SKIPPED.append(tf.Variable(0, dtype=tf.int64, trainable=False,
                                        name="skipped_records"))
    return _SKIPPED[0]


def _skip_adder(cfg, count: bool):
    """n -> adds n to ``skipped_records()`` (records dropped while reading a shard), or
    None when not counting (as :func:`_counting_skips`)."""
    if not (count and cfg.dataset.skip_bad_records and not cfg.dataset.data_service):
        return None
    counter = skipped_records()
    return lambda n: counter.assign_add(n)


def _counting_skips(cfg, count: bool):
    """ok -> ok, adding the bad records to ``skipped_records()`` when they are skipped.

    Not with the tf.data service: its workers run the pipeline in other processes.
    """
    if not (count and cfg.dataset.skip_bad_records and not cfg.dataset.data_service):
        return lambda ok: ok
    counter = skipped_records()

    def counted(ok):
        total = counter.assign_add(tf.cast(tf.logical_not(ok), tf.int64))
        return tf.logical_and(ok, total >= 0)  # a data dependency keeps the update
    return counted


def _where(pos, path) -> tf.Tensor:
    return tf.strings.join([path, ": record ", tf.strings.as_string(pos)])


def _parse(cfg, limit, count: bool = False):
    counted = _counting_skips(cfg, count)
    spec = label_spec(cfg.dataset)

    def parse(rec, ident, pos, path):
        encoded, raw, ok = imagenet.parse_record(rec, pos, path, cfg.dataset.skip_bad_records)
        ok = counted(ok)
        if limit:
            ok = tf.logical_and(ok, ident < limit)
        label = labels.check_label(raw, spec, labels.LABEL_KEY["imagenet"], _where(pos, path),
                                   check=ok)
        return {"encoded": encoded, "label": label, "index": tf.cast(ident, tf.int32), "ok": ok}
    return parse


def _imagenet_train(cfg, view_spec, ctx, start_epoch, global_batch, steps):
    n_pipe, pipe_id, replicas_here = _pipelines(ctx)
    per_replica = ctx.get_per_replica_batch_size(global_batch) if ctx else global_batch
    size = cfg.dataset.image_size
    scale = (cfg.augment.crop_scale_min, cfg.augment.crop_scale_max)
    n_views = view_spec.crops

    def one_pass(epoch):
        epoch_seed = tf.cast(cfg.seed, tf.int64) * 1_000_003 + epoch
        ds = _imagenet_records(cfg, "train", ctx, epoch=epoch)
        ds = ds.map(_parse(cfg, cfg.dataset.train_limit, count=True),
                    num_parallel_calls=AUTOTUNE)
        ds = ds.filter(lambda r: r["ok"])
        ds = _keyed_shuffle(ds.map(_with_order_key(epoch_seed)), cfg.dataset.shuffle_buffer)

        def crop(r):
            seed = tf.stack([epoch_seed, tf.cast(r["index"], tf.int64)])
            seeds = tf.unstack(tf.random.experimental.stateless_split(seed, n_views))
            crops = [augment.decode_and_random_crop(r["encoded"], s, size, scale) for s in seeds]
            return {"crops": tf.stack(crops), "index": r["index"], "label": r["label"]}

        ds = ds.map(crop, num_parallel_calls=AUTOTUNE)
        ds = ds.batch(per_replica, drop_remainder=True).enumerate()

        def finish(batch_no, b):
            crops = tf.unstack(b["crops"], axis=1)
            out = _finish_views(cfg, view_spec, crops, _batch_seed(cfg, epoch, batch_no, pipe_id))
            out["index"], out["label"] = b["index"], b["label"]
            return out

        return ds.map(finish, num_parallel_calls=AUTOTUNE)

    return _epochs(cfg, one_pass, start_epoch, steps * replicas_here)


def _audio_parse(cfg, limit, count: bool = False):
    counted = _counting_skips(cfg, count)
    spec = label_spec(cfg.dataset)

    def parse(rec, ident, pos, path):
        waveform, raw, phones, ok = audio.parse_record(rec, pos, path,
                                                       cfg.dataset.skip_bad_records)
        ok = counted(ok)
        if limit:
            ok = tf.logical_and(ok, ident < limit)
        label = labels.check_label(raw, spec, labels.LABEL_KEY["audio"], _where(pos, path),
                                   check=ok)
        return {"waveform": waveform, "phones": phones, "label": label,
                "index": tf.cast(ident, tf.int32), "ok": ok}
    return parse


def _keyed_shuffle(ds: tf.data.Dataset, buffer: int) -> tf.data.Dataset:
    """Permutes each block of ``buffer`` consecutive elements by their ``key``.

    With keys drawn from (seed, epoch, id), the order is a pure function of
    them, unlike a seeded ``Dataset.shuffle`` rebuilt each epoch, which repeats
    the same permutation every epoch. Blocks hold fixed-size windows, not whole
    utterances: memory is ``buffer`` * window * 4 bytes.
    """
    def permute(block):
        order = tf.argsort(block.pop("key"))
        return {k: tf.gather(v, order) for k, v in block.items()}
    return ds.batch(max(int(buffer), 1)).map(permute, num_parallel_calls=AUTOTUNE).unbatch()


def _with_order_key(epoch_seed):
    """Adds ``key``: a stateless draw from (epoch seed, instance id), for _keyed_shuffle."""
    def add(r):
        seed = tf.stack([tf.cast(epoch_seed, tf.int64) + 7_919, tf.cast(r["index"], tf.int64)])
        return {**r, "key": tf.random.stateless_uniform([], seed, minval=None, maxval=None,
                                                         dtype=tf.int64)}
    return add


def _audio_train(cfg, view_spec, ctx, start_epoch, global_batch, steps):
    del view_spec
    _, _, replicas_here = _pipelines(ctx)
    per_replica = ctx.get_per_replica_batch_size(global_batch) if ctx else global_batch
    window = _audio_window(cfg.dataset)

    def one_pass(epoch):
        epoch_seed = tf.cast(cfg.seed, tf.int64) * 1_000_003 + epoch
        ds = _imagenet_records(cfg, "train", ctx, epoch=epoch)
        ds = ds.map(_audio_parse(cfg, cfg.dataset.train_limit, count=True),
                    num_parallel_calls=AUTOTUNE)
        ds = ds.filter(lambda r: r["ok"])

        def crop(r):
            seed = tf.stack([epoch_seed, tf.cast(r["index"], tf.int64)])
            crop_seed, key_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
            wave, phones = audio.random_window(r["waveform"], r["phones"], crop_seed, window)
            key = tf.random.stateless_uniform([], key_seed, minval=None, maxval=None,
                                              dtype=tf.int64)
            return {"waveform": wave, "phones": phones, "label": r["label"],
                    "index": r["index"], "key": key}

        ds = ds.map(crop, num_parallel_calls=AUTOTUNE)
        ds = _keyed_shuffle(ds, cfg.dataset.shuffle_buffer)
        return ds.batch(per_replica, drop_remainder=True)

    return _epochs(cfg, one_pass, start_epoch, steps * replicas_here)


def _audio_eval(cfg, split, ctx, per_replica):
    """Centre windows of ``split`` in record order."""
    window = _audio_window(cfg.dataset)
    limit = cfg.dataset.train_limit if split == "train" else cfg.dataset.eval_limit
    ds = _imagenet_records(cfg, "train" if split == "train" else "validation", ctx)
    ds = ds.map(_audio_parse(cfg, limit), num_parallel_calls=AUTOTUNE)
    ds = ds.filter(lambda r: r["ok"])

    def center(r):
        wave, phones = audio.center_window(r["waveform"], r["phones"], window)
        return {"waveform": wave, "phones": phones, "label": r["label"], "index": r["index"]}

    return ds.map(center, num_parallel_calls=AUTOTUNE).batch(per_replica)


def _multiview_parse(cfg):
    names, channels = tuple(cfg.dataset.view_names), tuple(cfg.dataset.view_channels)
    spec = label_spec(cfg.dataset)

    def parse(rec, ident, pos, path):
        where = _where(pos, path)
        views, _, raw = multiview.parse_views(rec, names, channels, cfg.dataset.image_size,
                                              where)
        label = labels.check_label(raw, spec, labels.LABEL_KEY["multiview"], where)
        return views, tf.cast(ident, tf.int32), label
    return parse


def _multiview_train(cfg, view_spec, ctx, start_epoch, global_batch, steps):
    del view_spec
    _, _, replicas_here = _pipelines(ctx)
    per_replica = ctx.get_per_replica_batch_size(global_batch) if ctx else global_batch
    scale = (cfg.augment.crop_scale_min, cfg.augment.crop_scale_max)
    parse = _multiview_parse(cfg)

    def one_pass(epoch):
        epoch_seed = tf.cast(cfg.seed, tf.int64) * 1_000_003 + epoch
        ds = _imagenet_records(cfg, "train", ctx, epoch=epoch)

        def make(rec, ident, pos, path):
            views, index, label = parse(rec, ident, pos, path)
            seed = tf.stack([epoch_seed, tf.cast(index, tf.int64)])
            crops = multiview.aligned_crop(views, seed, cfg.dataset.image_size, scale,
                                           cfg.augment.flip)
            out = {f"view_{name}": crop for name, crop in crops.items()}
            out["index"], out["label"] = index, label
            return out

        ds = ds.map(make, num_parallel_calls=AUTOTUNE)
        ds = _keyed_shuffle(ds.map(_with_order_key(epoch_seed)), cfg.dataset.shuffle_buffer)
        return ds.batch(per_replica, drop_remainder=True)

    return _epochs(cfg, one_pass, start_epoch, steps * replicas_here)


def _multiview_eval(cfg, split, ctx, per_replica):
    """The first (core) view as ``image``: what the core view's encoder is scored on."""
    parse = _multiview_parse(cfg)
    first = cfg.dataset.view_names[0]

    def make(rec, ident, pos, path):
        views, index, label = parse(rec, ident, pos, path)
        return {"image": views[first], "label": label, "index": index}

    ds = _imagenet_records(cfg, "train" if split == "train" else "validation", ctx)
    return ds.map(make, num_parallel_calls=AUTOTUNE).batch(per_replica)


def build_dataset(cfg, input_context: tf.distribute.InputContext | None = None,
                  split: str = "train", training: bool = True,
                  view_spec: views.ViewSpec = views.SINGLE,
                  start_epoch: int = 0, start_step: int = 0) -> tf.data.Dataset:
    """The dataset for one input pipeline (pass to distribute_datasets_from_function).

    ``training=True`` gives an endless stream of augmented training batches
    starting at step ``start_step`` of epoch ``start_epoch`` (the batches a
    run resumed from a mid-epoch backup still has to train on);
    ``training=False`` gives one ordered pass over ``split`` with the
    evaluation view and per-replica batches of ``cfg.eval.batch_size`` (global).
    """
    info = describe(cfg.dataset)
    if training:
        steps = steps_per_epoch(cfg, info, _pipelines(input_context)[0])
        maker = {"imagenet": _imagenet_train, "multiview": _multiview_train,
                 "audio": _audio_train}.get(cfg.dataset.name, _array_train)
        source = _DATASET_SOURCE.get(cfg.dataset.name, views.IMAGE)
        if view_spec.source != source:
            raise ValueError(f"views of source {view_spec.source!r} do not fit dataset "
                             f"{cfg.dataset.name!r}, which yields {source!r}")
        ds = maker(cfg, view_spec, input_context, start_epoch, cfg.train.batch_size, steps)
        if start_step:
            ds = ds.skip(start_step * _pipelines(input_context)[2])
    else:
        ds = _eval_dataset(cfg, split, input_context)
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = True
    options.autotune.enabled = True
    if cfg.dataset.threads:
        options.threading.private_threadpool_size = cfg.dataset.threads
    # Parallel maps may hand batches over as soon as they are ready, out of order:
    # faster, but then a resumed run no longer replays the same batch sequence.
    # Every batch's augmentation is seeded by its position either way.
    options.deterministic = bool(cfg.deterministic or not training
                                 or not cfg.dataset.allow_reordering)
    ds = ds.with_options(options)
    if training and cfg.dataset.data_service:
        ds = _through_data_service(ds, cfg.dataset.data_service)
    return ds.prefetch(AUTOTUNE)


def _through_data_service(ds: tf.data.Dataset, address: str) -> tf.data.Dataset:
    """Runs ``ds``'s preprocessing on tf.data service workers (tools/data_service.py).

    Dynamic sharding hands out whole epochs of the training stream (the
    elements of its ``range`` of epochs) to the workers: every batch is
    produced once, by one worker. With one worker the batches arrive in the
    local order; with several, consecutive epochs' batches interleave.
    """
    service = tf.data.experimental.service
    return ds.apply(service.distribute(processing_mode=service.ShardingPolicy.DYNAMIC,
                                       service=address))


def _eval_dataset(cfg, split, ctx):
    per_replica = (ctx.get_per_replica_batch_size(cfg.eval.batch_size) if ctx
                   else cfg.eval.batch_size)
    size = cfg.dataset.image_size
    if cfg.dataset.name == "multiview":
        return _multiview_eval(cfg, split, ctx, per_replica)
    if cfg.dataset.name == "audio":
        return _audio_eval(cfg, split, ctx, per_replica)
    if cfg.dataset.name == "imagenet":
        limit = cfg.dataset.train_limit if split == "train" else cfg.dataset.eval_limit
        ds = _imagenet_records(cfg, "train" if split == "train" else "validation", ctx)
        ds = ds.map(_parse(cfg, limit), num_parallel_calls=AUTOTUNE)
        ds = ds.filter(lambda r: r["ok"])

        def center(r):
            return {"image": augment.decode_and_center_crop(r["encoded"], size),
                    "label": r["label"], "index": r["index"]}

        return ds.map(center, num_parallel_calls=AUTOTUNE).batch(per_replica)
    images, labels = _arrays(cfg.dataset, split)
    n_pipe, pipe_id, _ = _pipelines(ctx)
    ds = tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": labels, "index": np.arange(len(images), dtype=np.int32)})
    ds = ds.shard(n_pipe, pipe_id).batch(per_replica)

    def to_float(b):
        x = tf.cast(b["image"], tf.float32) / 255.0
        if x.shape[1] != size:
            x = tf.image.resize(x, [size, size], method="bilinear", antialias=True)
        return {"image": x, "label": b["label"], "index": b["index"]}

    return ds.map(to_float, num_parallel_calls=AUTOTUNE)


def jpeg_eval_view(ds_cfg, channels: int):
    """bytes -> float [H, W, C] in [0, 1]: the evaluation view of one encoded JPEG.

    ImageNet-style data gets the 87.5% center crop; small datasets (whose
    evaluation view is the whole image) are decoded and resized.
    """
    size = int(ds_cfg.image_size)
    if ds_cfg.name == "imagenet":
        return lambda encoded: augment.decode_and_center_crop(encoded, size)

    def whole(encoded):
        image = tf.io.decode_jpeg(encoded, channels=channels)
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, [size, size],
                                method="bilinear", antialias=True)
        return tf.clip_by_value(image, 0.0, 1.0)

    return whole
