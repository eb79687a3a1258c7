"""Sharded TFRecord datasets, shared by every record family (ImageNet schema, multi-view,
audio): the shard list and stable instance ids, reading one input pipeline's shards, the
keyed shuffle, and the count of skipped records.

Ids: official files carry no id, so they are derived from the sorted shard list and each
record's position in its shard: shard s starts at the sum of the record counts of the
shards before it. The counts are computed once and cached in ``record_counts.json``
beside the data (or, if that folder is read-only, under ``~/.cache/tf_contrastive``).
Counting reads only the TFRecord frame headers (:mod:`tf_contrastive.data.records`).
The cache also stores each shard's byte size, so a shard truncated after counting is
noticed and re-counted, which names the file and byte offset in the error.

State is held by objects: a :class:`ShardCatalog` keeps the index of each data dir
while its shards are unchanged, a :class:`SkipCounter` the skipped-record count;
:class:`RecordShards` holds one of each for the record families (``data/families.py``).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import re
import sys

import tensorflow as tf

from tf_contrastive.data import records, tfds_imagenet

COUNTS_FILE = "record_counts.json"
AUTOTUNE = tf.data.AUTOTUNE


def shard_files(data_dir: str, split: str) -> list[str]:
    """Sorted shard paths ``<data_dir>/<split>-*-of-*`` (or TensorFlow Datasets'
    ``*-<split>.tfrecord-*-of-*``, data/tfds_imagenet.py); an empty match is an error."""
    prefix = "validation" if split in ("validation", "test", "eval") else split
    pattern = os.path.join(data_dir, f"{prefix}-*-of-*")
    files = sorted(tf.io.gfile.glob(pattern))
    tfds_files = tfds_imagenet.shard_files(data_dir, prefix)  # TensorFlow Datasets' names
    if files and tfds_files:
        raise ValueError(f"config.dataset.data_dir: {data_dir} holds official ({prefix}-*) and "
                         f"TensorFlow Datasets (*-{prefix}.tfrecord-*) shards; keep one layout")
    files = files or tfds_files
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
        raise ValueError(
            f"{scan.path}: corrupt or truncated TFRecord after {scan.records} "
            f"records ({scan.damage})"
        )
    print(
        f"warning: {scan.path}: corrupt or truncated TFRecord after {scan.records} records "
        f"({scan.damage}); the records before it are used, the rest skipped",
        file=sys.stderr,
    )
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
        scan = records.ShardScan(
            path, int(entry["records"]), int(entry["bytes"]), entry.get("damage", "")
        )
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


@dataclasses.dataclass(frozen=True)
class ShardIndex:
    """The sorted shards of one split, the first id of each and the total record count."""

    files: tuple[str, ...]
    offsets: tuple[int, ...]
    total: int

    @property
    def counts(self) -> list[int]:
        return [b - a for a, b in zip(self.offsets, (*self.offsets[1:], self.total), strict=True)]

    def limited(self, limit: int) -> tuple[int, ...]:
        """Records of each shard among the first ``limit`` ids (0 = all)."""
        ends = (*self.offsets[1:], self.total)
        return tuple(
            min(end, limit) - min(start, limit) if limit else end - start
            for start, end in zip(self.offsets, ends, strict=True)
        )


def _signature(files: list[str]) -> tuple:
    # Local shards are recognised by name and byte size (a stat each, cheap); remote ones
    # by name only, so a remote index is not re-read with a stat per shard per call.
    return tuple((f, os.path.getsize(f) if "://" not in f else -1) for f in files)


class ShardCatalog:
    """Shard indexes by (data dir, split, skip_bad), kept while the shards are unchanged
    (same names and, for local files, the same byte sizes): rewritten data is re-indexed
    without anyone clearing a cache."""

    def __init__(self, maxsize: int = 8):
        self._maxsize = maxsize
        self._indexes: collections.OrderedDict = collections.OrderedDict()

    # Plain Python on file names and sizes. It runs while tf.data traces an epoch's
    # function; left to AutoGraph, it would be converted call by call and warn that
    # os.path.getsize has no source.
    @tf.autograph.experimental.do_not_convert
    def index(self, data_dir: str, split: str, skip_bad: bool = False) -> ShardIndex:
        files = shard_files(data_dir, split)
        key = (data_dir, split, bool(skip_bad))
        signature = _signature(files)
        found = self._indexes.get(key)
        if found is None or found[0] != signature:
            offsets, total = shard_offsets(files, skip_bad)
            found = (signature, ShardIndex(tuple(files), tuple(offsets), total))
        self._indexes[key] = found
        self._indexes.move_to_end(key)
        while len(self._indexes) > self._maxsize:
            self._indexes.popitem(last=False)
        return found[1]

    @staticmethod
    def has_split(data_dir: str, split: str) -> bool:
        try:
            shard_files(data_dir, split)
        except FileNotFoundError:
            return False
        return True


class SkipCounter:
    """How many bad training records this process's pipelines have skipped so far
    (``dataset.skip_bad_records``; each is also logged with its file and position).

    The variable is created on first use, outside any function or strategy scope; the
    trainer creates it before building the model. Counted as records are read, so it
    runs ahead of training by the prefetched batches. Not with the tf.data service:
    its workers run the pipeline in other processes.
    """

    def __init__(self):
        self._variable: tf.Variable | None = None

    def variable(self) -> tf.Variable:
        if self._variable is None:
            with tf.init_scope():
                self._variable = tf.Variable(
                    0, dtype=tf.int64, trainable=False, name="skipped_records"
                )
        return self._variable

    @staticmethod
    def _on(cfg, count: bool) -> bool:
        return bool(count and cfg.dataset.skip_bad_records and not cfg.dataset.data_service)

    def adder(self, cfg, count: bool):
        """n -> adds n (records dropped while reading a shard), or None when not counting."""
        if not self._on(cfg, count):
            return None
        counter = self.variable()
        return lambda n: counter.assign_add(n)

    def counting(self, cfg, count: bool):
        """ok -> ok, adding the records a parse rejected when they are skipped."""
        if not self._on(cfg, count):
            return lambda ok: ok
        counter = self.variable()

        def counted(ok):
            total = counter.assign_add(tf.cast(tf.logical_not(ok), tf.int64))
            return tf.logical_and(ok, total >= 0)  # a data dependency keeps the update

        return counted


class RecordShards:
    """Reads the shards of a record family: one catalog and one skip counter, shared by
    every record family so the run has one skipped-records figure."""

    def __init__(self):
        self.catalog = ShardCatalog()
        self.skipped = SkipCounter()

    def index(self, ds_cfg, split: str) -> ShardIndex:
        return self.catalog.index(ds_cfg.data_dir, split, ds_cfg.skip_bad_records)

    def read(
        self, cfg, split: str, pipelines: int, pipeline_id: int, epoch=None, check=None
    ) -> tf.data.Dataset:
        """(serialized, id, position, path) for this pipeline's shards.

        Shards are split between input pipelines by position in the sorted list
        (stable); with ``epoch`` given, this pipeline's shards are read in a stateless
        per-epoch random order and bad records skipped are counted. ``check``
        (serialized -> True, or raises) runs on every record read; a record that
        cannot be read or fails it is named, and skipped if configured.
        """
        index = self.index(cfg.dataset, split)
        files, offsets, counts = list(index.files), list(index.offsets), index.counts
        if len(files) < pipelines:
            raise ValueError(
                f"{cfg.dataset.data_dir}: {len(files)} {split} shards cannot be "
                f"split across {pipelines} input pipelines"
            )
        files_t = tf.constant(files[pipeline_id::pipelines])
        offsets_t = tf.constant(offsets[pipeline_id::pipelines], tf.int64)
        counts_t = tf.constant(counts[pipeline_id::pipelines], tf.int64)
        if epoch is not None:
            key = tf.stack([tf.cast(cfg.seed, tf.int64), tf.cast(epoch, tf.int64)])
            order = tf.argsort(
                tf.random.stateless_uniform([len(files[pipeline_id::pipelines])], key)
            )
            files_t, offsets_t, counts_t = (
                tf.gather(t, order) for t in (files_t, offsets_t, counts_t)
            )
        skip_bad = cfg.dataset.skip_bad_records
        adder = self.skipped.adder(cfg, epoch is not None)
        total = index.total

        def shard(path, offset, n):
            return records.read_shard(path, offset, n, skip_bad, check, adder, total)

        ds = tf.data.Dataset.from_tensor_slices((files_t, offsets_t, counts_t))
        return ds.interleave(
            shard, cycle_length=min(16, len(files)), num_parallel_calls=AUTOTUNE, deterministic=True
        )

    def find_rejected(self, ds_cfg, check) -> list[str]:
        """Re-reads the training and validation shards one by one with ``check``; the
        first record of each shard that fails it, as read_shard's error names it."""
        found = []
        for split in ("train", "validation"):
            if split == "validation" and not self.catalog.has_split(ds_cfg.data_dir, split):
                continue
            index = self.index(ds_cfg, split)
            for path, first, n in zip(index.files, index.offsets, index.counts, strict=True):
                ds = records.read_shard(
                    tf.constant(path),
                    tf.constant(first, tf.int64),
                    tf.constant(n, tf.int64),
                    False,
                    check,
                )
                try:
                    for _ in ds.batch(256).prefetch(2):
                        pass
                except tf.errors.InvalidArgumentError as scan_error:
                    named = re.search(r"bad TFRecord data:\]? \[?([^\]\n]*)", scan_error.message)
                    found.append(named.group(1) if named else f"{path}: {scan_error.message}")
        return found


def where(pos, path) -> tf.Tensor:
    """``<shard>: record <position>``, for errors naming a record."""
    return tf.strings.join([path, ": record ", tf.strings.as_string(pos)])


def keyed_shuffle(ds: tf.data.Dataset, buffer: int) -> tf.data.Dataset:
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


def with_order_key(epoch_seed):
    """Adds ``key``: a stateless draw from (epoch seed, instance id), for keyed_shuffle."""

    def add(r):
        seed = tf.stack([tf.cast(epoch_seed, tf.int64) + 7_919, tf.cast(r["index"], tf.int64)])
        return {
            **r,
            "key": tf.random.stateless_uniform([], seed, minval=None, maxval=None, dtype=tf.int64),
        }

    return add
