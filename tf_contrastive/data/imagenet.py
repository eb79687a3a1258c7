"""ImageNet TFRecords in the official TensorFlow schema, and stable instance ids.

Records follow ``build_imagenet_data.py`` from tensorflow/models (keys below;
labels 1-based, 1..1000; shards ``train-00000-of-01024``). Our converter adds
``image/id``, but the official files have no id, so ids are derived from the
sorted shard list and each record's position in its shard: shard s starts at
the sum of the record counts of the shards before it. The counts are computed
once and cached in ``record_counts.json`` beside the data (or, if that folder
is read-only, under ``~/.cache/tf_contrastive``). Counting reads only the
TFRecord frame headers (:mod:`tf_contrastive.data.records`). The cache also
stores each shard's byte size, so a shard truncated after counting is noticed
and re-counted, which names the file and byte offset in the error.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import tensorflow as tf

from tf_contrastive.data import records

COUNTS_FILE = "record_counts.json"
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


def shard_files(data_dir: str, split: str) -> list[str]:
    """Sorted shard paths ``<data_dir>/<split>-*-of-*``; an empty match is an error."""
    prefix = "validation" if split in ("validation", "test", "eval") else split
    pattern = os.path.join(data_dir, f"{prefix}-*-of-*")
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"config.dataset.data_dir: no TFRecord shards match {pattern}")
    return files


def count_records(path: str) -> int:
    """Counts a shard from its frame headers; a truncated or corrupt one raises naming
    ``path``, the records before the damage and its byte offset."""
    return _checked(records.scan_shard(path), skip_bad=False)


def _checked(scan: records.ShardScan, skip_bad: bool) -> int:
    """The shard's record count for ids; raises for a damaged shard unless ``skip_bad``,
    when the damaged record keeps an id (the reader skips and names it)."""
    if not scan.damage:
        return scan.records
    if not skip_bad:
        raise ValueError(f"{scan.path}: corrupt or truncated TFRecord after {scan.records} "
                         f"records ({scan.damage})")
    print(f"warning: {scan.path}: corrupt or truncated TFRecord after {scan.records} records "
          f"({scan.damage}); the records before it are used, the rest skipped",
          file=sys.stderr)
    return scan.records + 1


def _cache_paths(data_dir: str) -> list[str]:
    key = hashlib.sha1(os.path.abspath(data_dir).encode()).hexdigest()[:16]
    home = os.path.join(os.path.expanduser("~"), ".cache", "tf_contrastive")
    return [os.path.join(data_dir, COUNTS_FILE), os.path.join(home, f"counts-{key}.json")]


def _load_counts(data_dir: str) -> dict:
    for p in _cache_paths(data_dir):
        if tf.io.gfile.exists(p):
            with tf.io.gfile.GFile(p) as f:
                try:
                    return json.load(f)
                except json.JSONDecodeError:
                    continue  # A half-written cache is recomputed.
    return {}


def _store_counts(data_dir: str, counts: dict) -> None:
    for p in _cache_paths(data_dir):
        try:
            tf.io.gfile.makedirs(os.path.dirname(p))
            tmp = p + ".tmp"
            with tf.io.gfile.GFile(tmp, "w") as f:
                json.dump(counts, f, indent=1, sort_keys=True)
            tf.io.gfile.rename(tmp, p, overwrite=True)
            return
        except (tf.errors.OpError, OSError):
            continue


def record_counts(files: list[str], skip_bad: bool = False) -> list[int]:
    """Record count of each shard, from the cache when its byte size still matches.

    Shards not in the cache are counted from their framing, several at a time. A
    damaged shard is an error naming it, unless ``skip_bad``: then its readable
    records and the damaged one count (see :func:`_checked`).
    """
    if not files:
        return []
    data_dir = os.path.dirname(files[0])
    cache = _load_counts(data_dir)
    sizes = {path: tf.io.gfile.stat(path).length for path in files}

    def cached(path):
        entry = cache.get(os.path.basename(path))
        return entry if entry and entry.get("bytes") == sizes[path] else None

    todo = [path for path in files if cached(path) is None]
    for scan in records.scan_shards(todo):
        entry = {"records": scan.records, "bytes": scan.size}
        if scan.damage:
            entry["damage"] = scan.damage
        cache[os.path.basename(scan.path)] = entry
    if todo:
        _store_counts(data_dir, cache)
    counts = []
    for path in files:
        entry = cached(path)
        scan = records.ShardScan(path, int(entry["records"]), int(entry["bytes"]),
                                 entry.get("damage", ""))
        counts.append(_checked(scan, skip_bad))
    return counts


def shard_offsets(files: list[str], skip_bad: bool = False) -> tuple[list[int], int]:
    """(first id of each shard, total records) for the sorted shard list."""
    counts = record_counts(files, skip_bad)
    offsets, total = [], 0
    for c in counts:
        offsets.append(total)
        total += c
    return offsets, total


def jpeg_check(serialized: tf.Tensor) -> tf.Tensor:
    """True, after decoding the record's ``image/encoded`` JPEG in full (raises if it
    does not decode).

    A JPEG with an intact header and a corrupt body passes the magic check and
    may fail only in the crop, where the record is no longer known; this makes
    it fail here, where :func:`records.read_shard` names (or skips) it. The
    decode is at 1/8 scale: the whole entropy-coded body is still read, which is
    where such damage shows, at a fraction of the full decode's cost. Records
    without a JPEG pass through (:func:`parse_record` names them).
    """
    encoded = tf.io.parse_single_example(serialized, {"image/encoded": FEATURES["image/encoded"]})
    encoded = encoded["image/encoded"]
    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), JPEG_MAGIC)
    return tf.cond(is_jpeg,
                   lambda: tf.size(tf.io.decode_jpeg(encoded, channels=3, ratio=8)) >= 0,
                   lambda: tf.constant(True))


def parse_record(serialized: tf.Tensor, position: tf.Tensor, filename: tf.Tensor,
                 skip_bad: bool):
    """Parses one record -> (jpeg bytes, label as stored (-1 if absent), ok flag).

    A missing ``image/encoded`` or a payload that is not a JPEG raises an error
    naming the shard and the record position, unless ``skip_bad`` is set, in
    which case ``ok`` is False and a warning naming them is printed.
    """
    ex = tf.io.parse_single_example(serialized, FEATURES)
    encoded = ex["image/encoded"]
    has_image = tf.strings.length(encoded) > 0
    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), JPEG_MAGIC)
    ok = tf.logical_and(has_image, is_jpeg)
    where = tf.strings.join([filename, ": record ", tf.strings.as_string(position)])
    reason = tf.where(has_image, "payload is not a JPEG", "record has no image/encoded")
    if skip_bad:
        def warn():
            tf.print("skipping bad record:", where, "-", reason, output_stream=sys.stderr)
            return ok
        ok = tf.cond(ok, lambda: ok, warn)
    else:
        check = tf.debugging.Assert(ok, ["bad ImageNet record:", where, reason], summarize=1)
        with tf.control_dependencies([check]):
            encoded = tf.identity(encoded)
    label = tf.cast(ex["image/class/label"], tf.int32)  # checked by data/labels.py
    return encoded, label, ok
