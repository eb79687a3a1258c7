"""In-memory datasets: Fashion-MNIST (Debian package or Keras cache) and scikit-learn digits.

Each loader returns uint8 images shaped (N, H, W, C) and int32 labels; the
training split's row number is the instance id, which is stable by construction.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

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
