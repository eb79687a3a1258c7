"""What a dataset family provides, and the parts the record families share.

A family (``data/families.py`` maps each ``dataset.name`` to one) owns its config
rules, :meth:`Family.describe`, its training passes (what one pass over the data
yields, how an example is cropped), its evaluation stream and its evaluation view of
an encoded JPEG; the generic pipeline (``data/pipeline.py``) owns the epoch loop,
sharding, per-replica batches, seeding and the views once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import tensorflow as tf

from tf_contrastive.core import views
from tf_contrastive.data import labels, shards

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a method needs to know about its data before building a model.

    ``image_shape`` is the shape of one model input without the batch axis:
    (H, W, C) for images, (window,) for audio. ``num_classes`` counts speakers
    for audio (0 for a dataset declared unlabeled). ``train_shards`` holds the
    training records of each shard (sorted, after ``train_limit``; empty for
    in-memory data), for :func:`steps_per_epoch`. ``eval_off`` says why there
    is no kNN / evaluation figure ("" when there is one). ``knn_bank``: the memory
    bank's rows are the evaluation ``train`` split's, so the per-epoch kNN monitor
    may score against the bank; False when the labeled reference split is other
    images than the training stream's (image_folder's ``dataset.eval_dir``).
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
    knn_bank: bool = True


@dataclasses.dataclass(frozen=True)
class InputSlice:
    """What one input pipeline reads: its id among ``pipelines``, the ``replicas`` it
    feeds and their ``per_replica`` batch; for training also the global batch and the
    steps of an epoch."""

    pipelines: int
    pipeline_id: int
    replicas: int
    per_replica: int
    global_batch: int = 0
    steps: int = 0


@dataclasses.dataclass(frozen=True)
class Training:
    """A family's training passes for one input pipeline.

    ``one_pass(epoch)`` is one pass over the data as per-replica batches, a pure
    function of the epoch. Without ``crop`` the batches are final (their keys are
    the views); with it, ``crop(batch, seed)`` -> (crops, seed for their photometric
    augmentation, {"index", "label"}) and the pipeline makes the method's views of
    the crops. ``refills``: a short pass (skipped records) is completed from refill
    passes; in-memory passes are never short.
    """

    one_pass: Callable[[tf.Tensor], tf.data.Dataset]
    crop: Callable | None = None
    refills: bool = True


class Family:
    """Defaults of a dataset family; subclasses override what differs."""

    source = views.IMAGE  # what an example yields (core.views)
    input_key = "image"  # the batch key holding the model input

    def check_config(self, cfg) -> None:
        """Raises ConfigError naming the key of a dataset value this family rejects."""

    def describe(self, ds_cfg) -> DatasetInfo:
        raise NotImplementedError

    def training(self, cfg, view_spec: views.ViewSpec, part: InputSlice) -> Training:
        raise NotImplementedError

    def eval_stream(self, cfg, split: str, part: InputSlice) -> tf.data.Dataset:
        """One ordered pass over ``split``: ``image`` (the evaluation view), ``label``,
        ``index``, in per-replica batches."""
        raise NotImplementedError

    def run_facts(self, ds_cfg) -> dict:
        """What identifies the training data in the run fingerprint (core/fingerprint.py)."""
        return {}

    def jpeg_eval_view(self, ds_cfg, channels: int):
        """bytes -> float [H, W, C] in [0, 1]: the evaluation view of one encoded JPEG.
        Small datasets' evaluation view is the whole image, decoded and resized."""
        size = int(ds_cfg.image_size)

        def whole(encoded):
            image = tf.io.decode_jpeg(encoded, channels=channels)
            image = tf.image.resize(
                tf.cast(image, tf.float32) / 255.0, [size, size], method="bilinear", antialias=True
            )
            return tf.clip_by_value(image, 0.0, 1.0)

        return whole

    def name_undecodable(self, cfg, error: Exception) -> str | None:
        """What a decode error raised mid-run was (the records that do not decode), or
        None when this family cannot tell."""
        return None


class RecordFamily(Family):
    """TFRecord shards read through :class:`shards.RecordShards` (stable ids from the
    shard index), with labels checked against the family's :class:`labels.LabelSchema`."""

    label_schema: labels.LabelSchema
    # Whether dataset.train_limit / eval_limit apply.
    limited = True

    def __init__(self, reader: shards.RecordShards):
        self.reader = reader

    def input_shape(self, ds_cfg) -> tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...]]:
        """(shape of one model input, per-channel mean, std)."""
        raise NotImplementedError

    def label_spec(self, ds_cfg) -> labels.LabelSpec:
        """How the stored labels map to classes."""
        return labels.resolve(ds_cfg, self.label_schema)

    def _record_shards(self, ds_cfg) -> tuple[tuple[int, ...], int]:
        """(training records of each shard after train_limit, validation records; 0 when
        the data dir has no validation shards)."""
        index = self.reader.index(ds_cfg, "train")
        shard_sizes = index.limited(int(ds_cfg.train_limit) if self.limited else 0)
        n_eval = 0
        if self.reader.catalog.has_split(ds_cfg.data_dir, "validation"):
            n_eval = self.reader.index(ds_cfg, "validation").total
            if self.limited and ds_cfg.eval_limit:
                n_eval = min(n_eval, int(ds_cfg.eval_limit))
        return shard_sizes, n_eval

    def describe(self, ds_cfg) -> DatasetInfo:
        shape, mean, std = self.input_shape(ds_cfg)
        spec = self.label_spec(ds_cfg)
        shard_sizes, n_eval = self._record_shards(ds_cfg)
        eval_off = ""
        if not spec.labeled:
            eval_off = "config.dataset.labeled=False"
        elif not n_eval:
            eval_off = f"no validation shards in {ds_cfg.data_dir}"
        return DatasetInfo(
            sum(shard_sizes),
            n_eval,
            spec.num_classes,
            shape,
            mean,
            std,
            labeled=spec.labeled,
            train_shards=shard_sizes,
            eval_off=eval_off,
            source=self.source,
        )

    def records(self, cfg, split: str, part: InputSlice, epoch=None, check=None):
        """(serialized, id, position, path) of this pipeline's shards of ``split``
        ("train", else the validation shards)."""
        return self.reader.read(
            cfg,
            "train" if split == "train" else "validation",
            part.pipelines,
            part.pipeline_id,
            epoch,
            check,
        )

    def run_facts(self, ds_cfg) -> dict:
        """Shard names, record counts (cached by the reader) and byte sizes."""
        files = shards.shard_files(ds_cfg.data_dir, "train")
        return {
            "run.train_shards": [
                [os.path.basename(f), int(n), int(tf.io.gfile.stat(f).length)]
                for f, n in zip(files, shards.record_counts(files), strict=True)
            ]
        }
