"""In-memory datasets: Fashion-MNIST (Debian package or Keras cache) and scikit-learn digits,
and their dataset family.

Each loader returns uint8 images shaped (N, H, W, C) and int32 labels; the
training split's row number is the instance id, which is stable by construction.
A new in-memory dataset is its loader (a branch of :func:`load_arrays`) and one
line ``"name": arrays.ArrayFamily("name")`` in ``data/families.py``; one whose
loader takes config options, trains on another split or is file-backed subclasses
:class:`ArrayFamily` (``data/cifar.py``, ``data/stl10.py``).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct

import numpy as np
import tensorflow as tf

from tf_contrastive.core.config import ConfigError
from tf_contrastive.data import augment, family, labels

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file (optionally gzipped); the error names the file if malformed."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"{path}: cannot read IDX file ({e})") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    payload = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if payload.size != int(np.prod(dims)):
        raise ValueError(f"{path}: truncated IDX file: header says {dims}, "
                         f"found {payload.size} bytes of data")
    return payload.reshape(dims)


def load_fashion_mnist(split: str, data_dir: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST ``split`` ('train' or 'test') as (N, 28, 28, 1) uint8, labels."""
    if split not in FASHION_MNIST_FILES:
        raise ValueError(f"fashion_mnist has splits 'train' and 'test', not {split!r}")
    img_name, lbl_name = FASHION_MNIST_FILES[split]
    for d in [data_dir] if data_dir else [DEBIAN_FASHION_MNIST]:
        if os.path.exists(os.path.join(d, img_name)):
            images = read_idx(os.path.join(d, img_name))
            labels = read_idx(os.path.join(d, lbl_name))
            return images[..., None], labels.astype(np.int32)
    if data_dir:
        raise FileNotFoundError(f"config.dataset.data_dir: {data_dir} has no {img_name}")
    import keras  # Fallback: Keras's cache, downloading if absent.

    (xtr, ytr), (xte, yte) = keras.datasets.fashion_mnist.load_data()
    x, y = (xtr, ytr) if split == "train" else (xte, yte)
    return x[..., None], y.astype(np.int32)


def load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits, scaled to uint8; a fixed 1500/297 train/test split."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    images = np.clip(d.images * 16.0, 0, 255).astype(np.uint8)[..., None]
    labels = d.target.astype(np.int32)
    if split == "train":
        return images[:1500], labels[:1500]
    if split == "test":
        return images[1500:], labels[1500:]
    raise ValueError(f"digits has splits 'train' and 'test', not {split!r}")


def load_arrays(name: str, split: str, data_dir: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Dispatches to the loader for ``name``."""
    if name == "fashion_mnist":
        return load_fashion_mnist(split, data_dir)
    if name == "digits":
        return load_digits(split)
    raise ValueError(f"config.dataset.name: {name!r} is not an in-memory dataset")


def gatherer(images):
    """ids [B] -> uint8 images [B, H, W, C] of ``images``, for a tf.data map: arrays in
    memory become one graph constant; file-backed rows (with ``tf_gather``, e.g. STL-10's
    memory-mapped files, beyond the 2 GB graph limit) are read batch by batch."""
    if hasattr(images, "tf_gather"):
        return images.tf_gather
    images_t = tf.constant(images)
    return lambda ids: tf.gather(images_t, ids)


def pixel_stats(images) -> tuple[float, float]:
    """(mean, std) of the pixel values scaled to [0, 1]: float32 over a whole array in
    memory; file-backed rows compute their own (``pixel_stats``)."""
    if hasattr(images, "pixel_stats"):
        return images.pixel_stats()
    x = images.astype(np.float32) / 255.0
    return float(x.mean()), float(x.std())


class ArrayFamily(family.Family):
    """A dataset loaded into memory by :func:`load_arrays` (``name``): training crops
    whole batches gathered by id, evaluation resizes the whole image. The loaded
    arrays and their statistics are kept by the object (a few per process).

    Subclasses override :meth:`load` (and :meth:`options`, the config values it
    takes), :meth:`train_split`, :meth:`published_classes` and :meth:`train_digest`.
    """

    def __init__(self, name: str):
        self.name = name
        self._load = functools.lru_cache(maxsize=8)(self._load_split)
        self._info = functools.lru_cache(maxsize=8)(self._describe)

    def check_config(self, cfg) -> None:
        if cfg.dataset.label_base == 1:
            raise ConfigError(f"config.dataset.label_base: {self.name} labels are 0-based")

    def load(self, split: str, data_dir: str, *options):
        """``split`` as (uint8 images [N, H, W, C], int32 labels; -1 for unlabelled rows)."""
        return load_arrays(self.name, split, data_dir)

    def options(self, ds_cfg) -> tuple:
        """The config values :meth:`load` takes beyond split and data_dir."""
        return ()

    def train_split(self, ds_cfg) -> str:
        """The split the training stream (and the memory bank) covers."""
        return "train"

    def published_classes(self, ds_cfg) -> int:
        """The dataset's class count when not declared (0: count the labels)."""
        return 0

    def train_digest(self, ds_cfg) -> str:
        """The run fingerprint's digest of the training split: sha256 of it as loaded."""
        images, y = self.load("train", ds_cfg.data_dir, *self.options(ds_cfg))
        digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
        digest.update(np.ascontiguousarray(y).tobytes())
        return "sha256:" + digest.hexdigest()

    def _load_split(self, split: str, data_dir: str, limit: int, classes: tuple,
                    options: tuple = ()):
        images, y = self.load(split, data_dir, *options)
        if classes:
            keep = np.isin(y, classes)
            if not keep.any():
                raise ValueError(f"config.dataset.train_classes: {classes} matches no {split} "
                                 f"example of {self.name}")
            images, y = images[keep], y[keep]
        if limit:
            images, y = images[:limit], y[:limit]
        return images, y

    def _key(self, ds_cfg, split: str) -> tuple:
        limit = ds_cfg.train_limit if split != "test" else ds_cfg.eval_limit
        classes = tuple(int(c) for c in ds_cfg.train_classes) if split != "test" else ()
        return split, ds_cfg.data_dir, int(limit), classes, self.options(ds_cfg)

    def arrays(self, ds_cfg, split: str):
        """The split's arrays; the training split keeps only ``train_classes`` if set.
        Labels are -1 when the dataset is declared unlabeled."""
        images, y = self._load(*self._key(ds_cfg, split))
        if not ds_cfg.labeled:
            y = np.full_like(y, -1)
        return images, y

    def _describe(self, train_key: tuple, eval_key: tuple, size: int, declared: int,
                  labeled: bool) -> family.DatasetInfo:
        x_train, y_train = self._load(*train_key)
        x_eval, y_eval = self._load(*eval_key)
        mean, std = pixel_stats(x_train)
        num_classes = 0
        if labeled:
            # Both splits: a training label beyond the test split's would lose its kNN votes.
            num_classes = declared or int(max(y_train.max(), y_eval.max())) + 1
            source = "config.dataset.num_classes" if declared else "the labels"
            labels.check_array_labels(y_train[y_train != -1], num_classes, f"{self.name} train", source)
            labels.check_array_labels(y_eval, num_classes, f"{self.name} test", source)
        return family.DatasetInfo(len(x_train), len(x_eval), num_classes,
                                  (size, size, x_train.shape[-1]), (mean,), (std,),
                                  labeled=labeled,
                                  eval_off="" if labeled else "config.dataset.labeled=False")

    def describe(self, ds_cfg) -> family.DatasetInfo:
        return self._info(self._key(ds_cfg, self.train_split(ds_cfg)),
                          self._key(ds_cfg, "test"), int(ds_cfg.image_size),
                          int(ds_cfg.num_classes) or self.published_classes(ds_cfg),
                          bool(ds_cfg.labeled))

    def run_facts(self, ds_cfg) -> dict:
        return {"run.train_digest": self.train_digest(ds_cfg)}

    def training(self, cfg, view_spec, part):
        images, y = self.arrays(cfg.dataset, self.train_split(cfg.dataset))
        n = len(images)
        gather, labels_t = gatherer(images), tf.constant(y)
        size = cfg.dataset.image_size
        scale = (cfg.augment.crop_scale_min, cfg.augment.crop_scale_max)

        def one_pass(epoch):
            noise = tf.random.stateless_uniform([n], tf.stack([tf.cast(cfg.seed, tf.int64),
                                                               epoch]))
            order = tf.cast(tf.argsort(noise), tf.int32)[: part.steps * part.global_batch]
            ds = tf.data.Dataset.from_tensor_slices(order).shard(part.pipelines, part.pipeline_id)
            return ds.batch(part.per_replica, drop_remainder=True)

        def crop(ids, seed):
            seeds = tf.unstack(tf.random.experimental.stateless_split(seed, view_spec.crops + 1))
            x = tf.cast(gather(ids), tf.float32) / 255.0
            crops = [augment.random_resized_crop(x, s, size, scale) for s in seeds[1:]]
            return crops, seeds[0], {"index": ids, "label": tf.gather(labels_t, ids)}

        return family.Training(one_pass, crop=crop, refills=False)

    def eval_stream(self, cfg, split, part):
        size = cfg.dataset.image_size
        images, y = self.arrays(cfg.dataset, split)
        ds = tf.data.Dataset.from_tensor_slices(
            {"image": images, "label": y, "index": np.arange(len(images), dtype=np.int32)})
        ds = ds.shard(part.pipelines, part.pipeline_id).batch(part.per_replica)

        def to_float(b):
            x = tf.cast(b["image"], tf.float32) / 255.0
            if x.shape[1] != size:
                x = tf.image.resize(x, [size, size], method="bilinear", antialias=True)
            return {"image": x, "label": b["label"], "index": b["index"]}

        return ds.map(to_float, num_parallel_calls=family.AUTOTUNE)
