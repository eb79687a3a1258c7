"""ImageNet TFRecords in the official TensorFlow schema: the dataset family
(``dataset.name = "imagenet"``).

Records follow ``build_imagenet_data.py`` from tensorflow/models (keys below;
labels 1-based, 1..1000; shards ``train-00000-of-01024``). Our converter adds
``image/id``, but the official files have no id, so ids are derived from the
sorted shard list and each record's position in its shard
(:mod:`tf_contrastive.data.shards`). Training crops each JPEG on its encoded
bytes; evaluation takes the 87.5% center crop.
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import tensorflow as tf

from tf_contrastive.core.config import ConfigError
from tf_contrastive.data import augment, family, labels, shards, tfds_imagenet

# Shard listing and counting live in data/shards.py (every record family uses them).
from tf_contrastive.data.shards import (  # noqa: F401
    COUNTS_FILE,
    count_records,
    record_counts,
    shard_files,
    shard_offsets,
)

JPEG_MAGIC = b"\xff\xd8\xff"

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "image/id": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
}


def _bytes(v: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def _int(v: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))


def make_example(encoded: bytes, label: int, synset: str, text: str, height: int,
                 width: int, filename: str, instance_id: int | None = None) -> bytes:
    """One serialized tf.train.Example in the official schema (label is 1-based)."""
    feats = {
        "image/height": _int(height),
        "image/width": _int(width),
        "image/colorspace": _bytes(b"RGB"),
        "image/channels": _int(3),
        "image/class/label": _int(label),
        "image/class/synset": _bytes(synset.encode()),
        "image/class/text": _bytes(text.encode()),
        "image/format": _bytes(b"JPEG"),
        "image/filename": _bytes(filename.encode()),
        "image/encoded": _bytes(encoded),
    }
    if instance_id is not None:
        feats["image/id"] = _int(instance_id)
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def jpeg_check(serialized: tf.Tensor,
               schema: tfds_imagenet.RecordSchema = tfds_imagenet.OFFICIAL) -> tf.Tensor:
    """True, after decoding the record's ``image/encoded`` JPEG in full (raises if it
    does not decode).

    A JPEG with an intact header and a corrupt body passes the magic check and
    may fail only in the crop, where the record is no longer known; this makes
    it fail here, where :func:`records.read_shard` names (or skips) it. The
    decode is at 1/8 scale: the whole entropy-coded body is still read, which is
    where such damage shows, at a fraction of the full decode's cost. Records
    without a JPEG pass through (:func:`parse_record` names them).
    """
    key = schema.image_key
    encoded = tf.io.parse_single_example(serialized, {key: FEATURES["image/encoded"]})[key]
    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), JPEG_MAGIC)
    return tf.cond(is_jpeg,
                   lambda: tf.size(tf.io.decode_jpeg(encoded, channels=3, ratio=8)) >= 0,
                   lambda: tf.constant(True))


def parse_record(serialized: tf.Tensor, position: tf.Tensor, filename: tf.Tensor,
                 skip_bad: bool, schema: tfds_imagenet.RecordSchema = tfds_imagenet.OFFICIAL):
    """Parses one record -> (jpeg bytes, label as stored (-1 if absent), ok flag).

    A missing ``image/encoded`` or a payload that is not a JPEG raises an error
    naming the shard and the record position, unless ``skip_bad`` is set, in
    which case ``ok`` is False and a warning naming them is printed.
    """
    ex = tf.io.parse_single_example(
        serialized, FEATURES if schema == tfds_imagenet.OFFICIAL else schema.features())
    encoded = ex[schema.image_key]
    has_image = tf.strings.length(encoded) > 0
    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), JPEG_MAGIC)
    ok = tf.logical_and(has_image, is_jpeg)
    where = tf.strings.join([filename, ": record ", tf.strings.as_string(position)])
    reason = tf.where(has_image, "payload is not a JPEG", f"record has no {schema.image_key}")
    if skip_bad:
        def warn():
            tf.print("skipping bad record:", where, "-", reason, output_stream=sys.stderr)
            return ok
        ok = tf.cond(ok, lambda: ok, warn)
    else:
        check = tf.debugging.Assert(ok, ["bad ImageNet record:", where, reason], summarize=1)
        with tf.control_dependencies([check]):
            encoded = tf.identity(encoded)
    label = tf.cast(ex[schema.label_key], tf.int32)  # checked by data/labels.py
    return encoded, label, ok


class ImagenetFamily(family.RecordFamily):
    """ImageNet-schema records: random crops of the encoded JPEGs, center-crop evaluation.
    A data dir in the TensorFlow Datasets layout is read with its record schema
    (:func:`tfds_imagenet.schema_of`: ``image``, 0-based ``label``)."""

    label_schema = labels.LabelSchema(
        base=1, key="image/class/label", default_count=labels.IMAGENET_CLASSES,
        count_source=f"the official ImageNet schema ({labels.IMAGENET_CLASSES} classes)")

    def check_config(self, cfg) -> None:
        if cfg.dataset.train_classes:
            raise ConfigError("config.dataset.train_classes: is supported for in-memory "
                              "datasets only")

    @staticmethod
    def schema(ds_cfg) -> tfds_imagenet.RecordSchema:
        return tfds_imagenet.schema_of(ds_cfg.data_dir)

    def label_spec(self, ds_cfg) -> labels.LabelSpec:
        schema = self.schema(ds_cfg)
        if schema == tfds_imagenet.OFFICIAL:
            return labels.resolve(ds_cfg, self.label_schema)
        return labels.resolve(ds_cfg, dataclasses.replace(
            self.label_schema, base=schema.label_base, key=schema.label_key))

    def input_shape(self, ds_cfg):
        size = int(ds_cfg.image_size)
        return (size, size, 3), augment.IMAGENET_MEAN, augment.IMAGENET_STD

    def _jpeg_check(self, ds_cfg):
        schema = self.schema(ds_cfg)
        return jpeg_check if schema == tfds_imagenet.OFFICIAL else functools.partial(
            jpeg_check, schema=schema)

    def _check(self, cfg):
        # The full JPEG decode check costs a reduced-size decode per record (figures in
        # WORKSPACE.md); skipping needs it, and dataset.check_jpegs=False turns it off
        # otherwise (a bad body is then cropped around or fails in the crop).
        if cfg.dataset.skip_bad_records or cfg.dataset.check_jpegs:
            return self._jpeg_check(cfg.dataset)
        return None

    def _parse(self, cfg, limit, count: bool = False):
        counted = self.reader.skipped.counting(cfg, count)
        spec = self.label_spec(cfg.dataset)
        schema = self.schema(cfg.dataset)

        def parse(rec, ident, pos, path):
            encoded, raw, ok = parse_record(rec, pos, path, cfg.dataset.skip_bad_records, schema)
            ok = counted(ok)
            if limit:
                ok = tf.logical_and(ok, ident < limit)
            label = labels.check_label(raw, spec, schema.label_key, shards.where(pos, path),
                                       check=ok)
            return {"encoded": encoded, "label": label, "index": tf.cast(ident, tf.int32),
                    "ok": ok}
        return parse

    def training(self, cfg, view_spec, part):
        size = cfg.dataset.image_size
        scale = (cfg.augment.crop_scale_min, cfg.augment.crop_scale_max)
        n_views = view_spec.crops

        def one_pass(epoch):
            epoch_seed = tf.cast(cfg.seed, tf.int64) * 1_000_003 + epoch
            ds = self.records(cfg, "train", part, epoch=epoch, check=self._check(cfg))
            ds = ds.map(self._parse(cfg, cfg.dataset.train_limit, count=True),
                        num_parallel_calls=family.AUTOTUNE)
            ds = ds.filter(lambda r: r["ok"])
            ds = shards.keyed_shuffle(ds.map(shards.with_order_key(epoch_seed)),
                                      cfg.dataset.shuffle_buffer)

            def crop(r):
                seed = tf.stack([epoch_seed, tf.cast(r["index"], tf.int64)])
                seeds = tf.unstack(tf.random.experimental.stateless_split(seed, n_views))
                crops = [augment.decode_and_random_crop(r["encoded"], s, size, scale)
                         for s in seeds]
                return {"crops": tf.stack(crops), "index": r["index"], "label": r["label"]}

            ds = ds.map(crop, num_parallel_calls=family.AUTOTUNE)
            return ds.batch(part.per_replica, drop_remainder=True)

        def views_of(b, seed):
            return tf.unstack(b["crops"], axis=1), seed, {"index": b["index"], "label": b["label"]}

        return family.Training(one_pass, crop=views_of)

    def eval_stream(self, cfg, split, part):
        size = cfg.dataset.image_size
        limit = cfg.dataset.train_limit if split == "train" else cfg.dataset.eval_limit
        ds = self.records(cfg, split, part, check=self._check(cfg))
        ds = ds.map(self._parse(cfg, limit), num_parallel_calls=family.AUTOTUNE)
        ds = ds.filter(lambda r: r["ok"])

        def center(r):
            return {"image": augment.decode_and_center_crop(r["encoded"], size),
                    "label": r["label"], "index": r["index"]}

        return ds.map(center, num_parallel_calls=family.AUTOTUNE).batch(part.per_replica)

    def jpeg_eval_view(self, ds_cfg, channels: int):
        """The 87.5% center crop of ImageNet-style data."""
        size = int(ds_cfg.image_size)
        return lambda encoded: augment.decode_and_center_crop(encoded, size)

    def name_undecodable(self, cfg, error: Exception) -> str | None:
        """The shards and records whose JPEG does not decode, found by re-reading the
        training and validation shards with the full decode check (:func:`jpeg_check`);
        None when ``error`` is no JPEG decode error, or the scan finds nothing.

        With ``dataset.check_jpegs=False`` (and no skipping) the check does not run as
        records are read, so a JPEG with an intact header and a corrupt body fails only
        in the crop, where the record is no longer known. Re-reading costs one
        reduced-size decode per record, paid only on this error path.
        """
        text = str(error)
        if "jpeg" not in text.lower() or "bad TFRecord data:" in text:
            return None  # the last: the check has named it already
        found = self.reader.find_rejected(cfg.dataset, self._jpeg_check(cfg.dataset))
        if not found:
            return None
        return ("a JPEG did not decode: " + "; ".join(found)
                + " (set --config.dataset.skip_bad_records=True to skip such records)")
