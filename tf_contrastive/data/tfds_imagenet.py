"""ImageNet as TensorFlow Datasets writes it, beside the official TFRecord schema.

TFDS (``tfds.builder("imagenet2012").download_and_prepare()``) leaves shards
named ``imagenet2012-train.tfrecord-00000-of-01024`` and
``imagenet2012-validation.tfrecord-00000-of-00064`` in
``~/tensorflow_datasets/imagenet2012/<version>/``, each record a tf.train.Example
with ``image`` (the encoded JPEG), ``label`` (int64, 0-based) and ``file_name``.
The layout of a ``dataset.data_dir`` is detected from its file names
(:func:`schema_of`); both layouts are read by the same record pipeline
(data/imagenet.py, data/records.py), with ids from the sorted shard list and
each record's position, so they are stable across reads as for official files.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class RecordSchema:
    """Where an ImageNet record keeps its JPEG and label, and the first label's value."""

    name: str
    image_key: str
    label_key: str
    label_base: int

    def features(self) -> dict:
        return {
            self.image_key: tf.io.FixedLenFeature([], tf.string, default_value=""),
            self.label_key: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        }


OFFICIAL = RecordSchema("official", "image/encoded", "image/class/label", 1)
TFDS = RecordSchema("tfds", "image", "label", 0)


def shard_files(data_dir: str, split: str) -> list[str]:
    """Sorted TFDS shards ``<data_dir>/<name>-<split>.tfrecord-*-of-*`` (may be empty)."""
    return sorted(tf.io.gfile.glob(os.path.join(data_dir, f"*-{split}.tfrecord-*-of-*")))


def schema_of(data_dir: str) -> RecordSchema:
    """TFDS when ``data_dir`` holds TFDS-named training shards, else the official schema."""
    return TFDS if shard_files(data_dir, "train") else OFFICIAL
