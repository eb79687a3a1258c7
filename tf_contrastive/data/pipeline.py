"""build_dataset: decoder -> views -> one generic tf.data pipeline.

The batch-dict contract between data and methods. Training batches hold:

* the view keys of the method's :class:`~tf_contrastive.core.views.ViewSpec`,
  float32 in about [0, 1]: ``image`` [B, H, W, C] for one view; ``view_0`` /
  ``view_1`` for two augmentations; ``view_l`` / ``view_ab`` for CMC's channel
  splits; ``patches`` [B, Gh, Gw, P, P, C] for CPC v2's patch grid; from
  multi-view records (``dataset.name = "multiview"``) ``view_<name>`` [B, H, W,
  c_name] for each of ``dataset.view_names``, aligned crops of one instance;
* from audio records (``dataset.name = "audio"``, :mod:`tf_contrastive.data.audio`)
  instead ``waveform``, float32 [B, W] in [-1, 1) with W = ``dataset.audio_window``
  samples, and ``phones``, int32 [B, W // 160], the phone label of each 10 ms frame
  of the window (-1 where unknown or past the end of the utterance);
* ``index`` (int32 instance id, the memory-bank row) and ``label`` (int32, 0-based,
  checked in range by :mod:`tf_contrastive.data.labels`; the speaker for audio; -1
  for a dataset declared unlabeled).

Evaluation batches hold the evaluation view under :func:`input_key` (``image``, the
center view or the first of the multi-view records; for audio ``waveform`` and
``phones``, centred windows), ``label`` and ``index``.

Each dataset family (``data/families.py``) says what one pass over its data yields
and how an example is cropped; this module owns the rest once: the epoch loop,
sharding, per-replica batches, seeding, the views, options and the data service.
Training order and augmentation are pure functions of (config seed, epoch,
position), so a run restarted at epoch e reads exactly what an uninterrupted
run reads from epoch e on. Each epoch is exactly ``steps_per_epoch`` batches
cut from its own pass (:func:`_epochs`), so no epoch runs into the next one's.
"""

from __future__ import annotations

import tensorflow as tf

from tf_contrastive.core import color, views
from tf_contrastive.core.config import ConfigError
from tf_contrastive.data import augment, families
from tf_contrastive.data.family import DatasetInfo, InputSlice

__all__ = ["DatasetInfo", "build_dataset", "check_config", "describe", "input_key",
           "jpeg_eval_view", "name_undecodable", "run_facts", "skipped_records",
           "steps_per_epoch"]

_EPOCHS_FOREVER = 1 << 30
# Refill pass s of epoch e is read as epoch e + s * _REFILL: its own shard order,
# shuffle and crops, never those of a real epoch (< _EPOCHS_FOREVER).
_REFILL = 1 << 40
AUTOTUNE = tf.data.AUTOTUNE
check_config = families.check_config


def describe(ds_cfg) -> DatasetInfo:
    """Sizes, classes and input shape of the configured dataset."""
    return families.get(ds_cfg.name).describe(ds_cfg)


def input_key(cfg) -> str:
    """The batch key holding the model input: ``waveform`` for audio, else ``image``."""
    return families.get(cfg.dataset.name).input_key


def run_facts(ds_cfg) -> dict:
    """The ``run.*`` facts identifying the training data (core/fingerprint.py)."""
    return families.get(ds_cfg.name).run_facts(ds_cfg)


def jpeg_eval_view(ds_cfg, channels: int):
    """bytes -> float [H, W, C] in [0, 1]: the evaluation view of one encoded JPEG
    (ImageNet-style data: the 87.5% center crop; small datasets: the whole image)."""
    return families.get(ds_cfg.name).jpeg_eval_view(ds_cfg, channels)


def name_undecodable(cfg, error: Exception) -> str | None:
    """What a decode error raised mid-run was, named by shard and record by the
    dataset's family (ImageNet-schema JPEGs), or None."""
    found = families.FAMILIES.get(cfg.dataset.name)
    return None if found is None else found.name_undecodable(cfg, error)


def skipped_records() -> tf.Variable:
    """How many bad training records this process's pipelines have skipped so far
    (``dataset.skip_bad_records``; see :class:`tf_contrastive.data.shards.SkipCounter`)."""
    return families.RECORDS.skipped.variable()


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


def _epochs(cfg, one_pass, start_epoch, batches: int, refills: bool = True) -> tf.data.Dataset:
    """Epochs ``start_epoch``, ... of exactly ``batches`` batches each, epoch e cut
    from ``one_pass(e)`` (a pure function of e).

    With ``dataset.skip_bad_records`` a pass may come out short; the epoch is then
    completed from refill passes over the same records, each with its own order
    and crops (so those ids appear twice in that epoch), and the next epoch still
    starts on its own pass.
    """
    def one_epoch(epoch):
        ds = one_pass(epoch)
        if refills and cfg.dataset.skip_bad_records:
            more = tf.data.Dataset.range(1, batches + 1, output_type=tf.int64)
            ds = ds.concatenate(more.flat_map(lambda s: one_pass(epoch + s * _REFILL)))
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


def _input_slice(ctx, per_replica_of: int, steps: int = 0) -> InputSlice:
    n_pipe, pipe_id, replicas = _pipelines(ctx)
    per_replica = ctx.get_per_replica_batch_size(per_replica_of) if ctx else per_replica_of
    return InputSlice(n_pipe, pipe_id, replicas, per_replica, per_replica_of, steps)


def _train_stream(cfg, family, view_spec, ctx, start_epoch, steps) -> tf.data.Dataset:
    """The family's passes as exact epochs, its crops made into the method's views."""
    part = _input_slice(ctx, cfg.train.batch_size, steps)
    train = family.training(cfg, view_spec, part)

    def one_pass(epoch):
        ds = train.one_pass(epoch)
        if train.crop is None:
            return ds

        def finish(batch_no, batch):
            seed = _batch_seed(cfg, epoch, batch_no, part.pipeline_id)
            crops, seed, rest = train.crop(batch, seed)
            return {**_finish_views(cfg, view_spec, crops, seed), **rest}

        return ds.enumerate().map(finish, num_parallel_calls=AUTOTUNE)

    return _epochs(cfg, one_pass, start_epoch, steps * part.replicas, train.refills)


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
    family = families.get(cfg.dataset.name)
    info = family.describe(cfg.dataset)
    if training:
        steps = steps_per_epoch(cfg, info, _pipelines(input_context)[0])
        if view_spec.source != family.source:
            raise ValueError(f"views of source {view_spec.source!r} do not fit dataset "
                             f"{cfg.dataset.name!r}, which yields {family.source!r}")
        ds = _train_stream(cfg, family, view_spec, input_context, start_epoch, steps)
        if start_step:
            ds = ds.skip(start_step * _pipelines(input_context)[2])
    else:
        ds = family.eval_stream(cfg, split, _input_slice(input_context, cfg.eval.batch_size))
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
