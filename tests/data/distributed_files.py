"""Small files in the exact layouts CIFAR, STL-10 and TensorFlow Datasets distribute.

Written byte by byte from the published format descriptions (not through the
readers), so a reader that decodes them differently fails the pixel checks.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np


def _cifar_batch(rng, n: int, label_keys: dict) -> dict:
    # As the originals: bytes keys, uint8 rows of 3072 bytes, labels as Python lists.
    batch = {
        b"batch_label": b"testing batch",
        b"data": rng.integers(0, 256, (n, 3072), np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    for key, classes in label_keys.items():
        batch[key] = [int(v) for v in rng.integers(0, classes, n)]
    return batch


def cifar10_batches(seed: int = 0, rows: int = 6) -> dict[str, dict]:
    """member name -> pickled dict of a tiny cifar-10-batches-py/ (``rows`` per batch)."""
    rng = np.random.default_rng(seed)
    out = {f"data_batch_{i}": _cifar_batch(rng, rows, {b"labels": 10}) for i in range(1, 6)}
    out["test_batch"] = _cifar_batch(rng, rows, {b"labels": 10})
    out["batches.meta"] = {
        b"label_names": [f"c{i}".encode() for i in range(10)],
        b"num_cases_per_batch": rows,
        b"num_vis": 3072,
    }
    return out


def cifar100_members(seed: int = 0, rows: int = 8) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    keys = {b"fine_labels": 100, b"coarse_labels": 20}
    return {
        "train": _cifar_batch(rng, rows, keys),
        "test": _cifar_batch(rng, rows, keys),
        "meta": {b"fine_label_names": [b"f"] * 100, b"coarse_label_names": [b"c"] * 20},
    }


def write_folder(root: str, folder: str, members: dict[str, dict]) -> str:
    d = os.path.join(root, folder)
    os.makedirs(d, exist_ok=True)
    for name, obj in members.items():
        with open(os.path.join(d, name), "wb") as f:
            pickle.dump(obj, f, protocol=2)
    return d


def write_tar_gz(path: str, folder: str, members: dict[str, dict]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in members.items():
            data = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def cifar_decode(row: np.ndarray) -> np.ndarray:
    """One 3072-byte row -> (32, 32, 3): byte c*1024 + y*32 + x is channel c at (y, x)."""
    y, x, c = np.indices((32, 32, 3))
    return row[c * 1024 + y * 32 + x]


STL_BYTES = 3 * 96 * 96


def write_stl10(
    root: str, train: int = 6, test: int = 4, unlabeled: int = 10, seed: int = 0
) -> str:
    """A tiny stl10_binary/ folder of random images and 1-based labels."""
    rng = np.random.default_rng(seed)
    d = os.path.join(root, "stl10_binary")
    os.makedirs(d, exist_ok=True)
    for split, n in (("train", train), ("test", test), ("unlabeled", unlabeled)):
        rng.integers(0, 256, n * STL_BYTES, np.uint8).tofile(os.path.join(d, f"{split}_X.bin"))
        if split != "unlabeled":
            rng.integers(1, 11, n, np.uint8).tofile(os.path.join(d, f"{split}_y.bin"))
    return d


def stl10_decode(path: str, i: int) -> np.ndarray:
    """Image ``i`` of an _X.bin -> (96, 96, 3): column-major planes, so byte
    c*9216 + x*96 + y is channel c at row y, column x."""
    raw = np.fromfile(path, np.uint8)[i * STL_BYTES : (i + 1) * STL_BYTES]
    y, x, c = np.indices((96, 96, 3))
    return raw[c * 9216 + x * 96 + y]


def write_tfds_imagenet(
    root: str, images, labels, shards: int = 2, split: str = "train", name: str = "imagenet2012"
) -> list[str]:
    """TFDS-named shards of tf.train.Example records with TFDS's keys: ``image`` (JPEG
    bytes), ``label`` (int64, 0-based) and ``file_name``; records dealt round-robin."""
    import tensorflow as tf

    os.makedirs(root, exist_ok=True)
    paths = [
        os.path.join(root, f"{name}-{split}.tfrecord-{s:05d}-of-{shards:05d}")
        for s in range(shards)
    ]
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        feats = {
            "image": tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[tf.io.encode_jpeg(image, quality=95).numpy()])
            ),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
            "file_name": tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[f"n0000000{label}_{i}.JPEG".encode()])
            ),
        }
        example = tf.train.Example(features=tf.train.Features(feature=feats))
        writers[i % shards].write(example.SerializeToString())
    for w in writers:
        w.close()
    return paths
