"""TFRecord shards: counting records from the framing, and reading them with every
bad record named.

A TFRecord file is a sequence of frames: an 8-byte little-endian length, a
4-byte masked CRC32C of those 8 bytes, the data, and a 4-byte masked CRC32C of
the data. :func:`scan_shard` walks the headers and seeks past the data, so a
shard is counted without reading its payloads; a header whose CRC does not
match, or a frame that runs past the end of the file, marks the shard as
damaged at that byte offset (the offset TensorFlow's own reader reports).
Payload CRCs are not checked here; a payload that fails its CRC ends the
shard when it is read, and :func:`read_shard` names it then.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import mmap
import os
import struct
import sys
from collections.abc import Callable

import numpy as np
import tensorflow as tf

_HEADER = struct.Struct("<QI")  # length, masked CRC32C of the length's 8 bytes
_FOOTER_BYTES = 4
_MASK_DELTA = 0xA282EAD8


def _crc32c_table() -> np.ndarray:
    poly = 0x82F63B78  # CRC-32C (Castagnoli), reflected
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ poly, table >> 1).astype(np.uint32)
    return table


_TABLE = _crc32c_table()


def masked_crc32c(data: np.ndarray) -> np.ndarray:
    """TFRecord's masked CRC32C of each row of ``data`` (uint8 [n, k]) -> uint32 [n]:
    the CRC rotated right by 15 bits plus a constant. Vectorised over rows, so
    checking a shard's headers costs k NumPy passes, not n Python loops."""
    crc = np.full(len(data), 0xFFFFFFFF, np.uint32)
    for col in data.T.astype(np.uint32):
        crc = _TABLE[(crc ^ col) & 0xFF] ^ (crc >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    return ((crc >> 15) | (crc << 17)) + np.uint32(_MASK_DELTA)


@dataclasses.dataclass(frozen=True)
class ShardScan:
    """What the framing of one shard says.

    ``records`` frames are intact. ``damage`` is empty for a sound shard, else
    TensorFlow's wording for the first bad frame (``"truncated record at 9030"``
    or ``"corrupted record at 117"``; ``offset`` is that byte offset): nothing
    from there on can be read.
    """

    path: str
    records: int
    size: int
    damage: str = ""
    offset: int = -1


def _walk(path: str, size: int, read_at: Callable[[int, int], bytes]) -> ShardScan:
    # Follow the lengths first, then check every header's CRC at once: the first
    # bad one is where the damage is, even if a bad length sent the walk astray.
    starts, headers, off = [], [], 0
    truncated = False
    while off < size:
        header = read_at(off, _HEADER.size)
        if len(header) < _HEADER.size:
            truncated = True
            break
        starts.append(off)
        headers.append(header)
        off += _HEADER.size + _HEADER.unpack(header)[0] + _FOOTER_BYTES
        if off > size:
            truncated = True
            break
    if headers:
        raw = np.frombuffer(b"".join(headers), np.uint8).reshape(-1, _HEADER.size)
        stored = raw[:, 8:].copy().view("<u4")[:, 0]
        bad = np.flatnonzero(masked_crc32c(raw[:, :8]) != stored)
        if bad.size:
            k = int(bad[0])
            return ShardScan(path, k, size, f"corrupted record at {starts[k]}", starts[k])
    if truncated:
        at = starts[-1] if off > size else off
        n = len(starts) - 1 if off > size else len(starts)
        return ShardScan(path, n, size, f"truncated record at {at}", at)
    return ShardScan(path, len(starts), size)


def scan_shard(path: str) -> ShardScan:
    """Counts the records of one shard from its frame headers (no payload is read)."""
    if "://" not in path:  # a local file: map it, touching only the header pages
        size = os.path.getsize(path)
        if size == 0:
            return ShardScan(path, 0, 0)
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _walk(path, size, lambda off, n: mm[off : off + n])
    size = tf.io.gfile.stat(path).length
    with tf.io.gfile.GFile(path, "rb") as f:

        def read_at(off: int, n: int) -> bytes:
            f.seek(off)
            return f.read(n)

        return _walk(path, size, read_at)


def scan_shards(paths: list[str], threads: int = 16) -> list[ShardScan]:
    """:func:`scan_shard` of each path, several at a time (remote file systems wait on
    each read; local shards are mostly in the page cache)."""
    if len(paths) <= 1:
        return [scan_shard(p) for p in paths]
    with concurrent.futures.ThreadPoolExecutor(min(threads, len(paths))) as pool:
        return list(pool.map(scan_shard, paths))


def _records_text(first: tf.Tensor, stop: tf.Tensor) -> tf.Tensor:
    """ "record 4" or "records 4..6" for positions [first, stop)."""
    last = stop - 1
    return tf.where(
        first == last,
        tf.strings.join(["record ", tf.strings.as_string(first)]),
        tf.strings.join(
            ["records ", tf.strings.as_string(first), "..", tf.strings.as_string(last)]
        ),
    )


def read_shard(
    path: tf.Tensor,
    first_id: tf.Tensor,
    count: tf.Tensor,
    skip_bad: bool,
    check: Callable[[tf.Tensor], tf.Tensor] | None = None,
    count_skipped: Callable[[tf.Tensor], tf.Tensor] | None = None,
    num_ids: int | None = None,
) -> tf.data.Dataset:
    """(serialized, id, position, path) of records 0..count-1 of one shard.

    ``count`` is the shard's record count from :func:`scan_shard` (a damaged
    shard counts its damaged record too, so it keeps an id). Two kinds of
    failure drop records: a read error (a truncated shard, a frame or payload
    failing its CRC) ends the shard there, and ``check(serialized)`` (a scalar
    bool that is True, computed by ops that raise for a record that must not go
    on, e.g. a JPEG whose body does not decode) drops that one record. Either way the dropped
    positions are named: with ``skip_bad`` a warning names the shard and the
    records and ``count_skipped(n)`` is called with how many; without it the
    pipeline stops with an error naming them.

    With ``num_ids``, an id outside [0, num_ids) (the memory-bank rows) is an
    error naming the record and the id, whatever ``skip_bad`` says: it means
    the counts the ids were derived from do not fit the shards.
    """
    count = tf.cast(count, tf.int64)
    # Read errors end the shard (TFRecordDataset moves on to its next file, and
    # there is none), so positions before the first one are contiguous.
    read = tf.data.TFRecordDataset(path, buffer_size=8 << 20).take(count)
    read = read.ignore_errors(log_warning=True).enumerate()
    end = tf.data.Dataset.from_tensors((count, tf.constant(b"")))
    # The end marker carries how many records were read, counted by a scan.
    ds = read.concatenate(end).scan(
        tf.constant(0, tf.int64), lambda n, e: (tf.where(e[0] < count, n + 1, n), (e[0], e[1], n))
    )
    if check is not None:
        # The check's result is part of the element (and used below), so the graph
        # optimiser cannot prune it as it could a control dependency.
        def checked(pos, rec, n_read):
            ok = tf.cond(pos < count, lambda: check(rec), lambda: tf.constant(True))
            return pos, rec, n_read, ok

        ds = ds.map(checked, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.ignore_errors(log_warning=True)  # the decoder's reason, in the log
    else:
        ds = ds.map(lambda pos, rec, n_read: (pos, rec, n_read, tf.constant(True)))
    # Positions the check dropped show up as gaps before the next record seen.
    ds = ds.scan(tf.constant(0, tf.int64), lambda expect, e: (e[0] + 1, (*e, expect)))

    def report(pos, rec, n_read, ok, expect):
        stop = tf.where(pos < count, pos, n_read)
        failed = stop - expect + tf.cast(tf.logical_not(ok), tf.int64)  # rejected by the check
        lost = tf.where(pos < count, tf.constant(0, tf.int64), count - n_read)  # unreadable
        what = tf.strings.join(
            [
                path,
                ": ",
                tf.where(
                    failed > 0,
                    tf.strings.join(
                        [_records_text(expect, stop), " rejected (payload does not decode)"]
                    ),
                    "",
                ),
                tf.where(tf.logical_and(failed > 0, lost > 0), "; ", ""),
                tf.where(
                    lost > 0,
                    tf.strings.join(
                        [
                            _records_text(n_read, count),
                            " unreadable (truncated or corrupt TFRecord)",
                        ]
                    ),
                    "",
                ),
            ]
        )
        bad = failed + lost
        if skip_bad:

            def warn():
                tf.print("skipping bad records:", what, output_stream=sys.stderr)
                return bad if count_skipped is None else count_skipped(bad)

            done = tf.cond(bad > 0, warn, lambda: bad)
        else:
            done = tf.debugging.Assert(tf.equal(bad, 0), ["bad TFRecord data:", what], summarize=1)
        ident = first_id + pos
        checks = [done]
        if num_ids is not None:
            in_range = tf.logical_or(pos >= count, tf.logical_and(ident >= 0, ident < num_ids))
            checks.append(
                tf.debugging.Assert(
                    in_range,
                    [
                        tf.strings.join(
                            [
                                "bad instance id: ",
                                path,
                                ": record ",
                                tf.strings.as_string(pos),
                                " has id ",
                                tf.strings.as_string(ident),
                                f", outside the memory-bank rows [0, {num_ids})",
                            ]
                        )
                    ],
                    summarize=1,
                )
            )
        with tf.control_dependencies(checks):
            return tf.identity(rec), ident, pos, path

    ds = ds.map(report)
    return ds.filter(lambda rec, ident, pos, p: pos < count)
