"""CIFAR-10 / CIFAR-100 read from the Python-pickle archives as their authors distribute them.

``dataset.data_dir`` may be the extracted folder (``cifar-10-batches-py/`` with
``data_batch_1`` .. ``data_batch_5``, ``test_batch``, ``batches.meta``;
``cifar-100-python/`` with ``train``, ``test``, ``meta``), a folder holding that
folder, the ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` itself, or a
folder holding the archive. Archive members are read from the tar stream, never
extracted to disk.

Each pickle holds a dict with bytes keys: ``b"data"`` (N x 3072 uint8 rows: the
R, G and B 32x32 planes, each row-major) and ``b"labels"`` (CIFAR-10) or
``b"fine_labels"`` / ``b"coarse_labels"`` (CIFAR-100). The pickles are loaded
with an unpickler that only admits the numpy array constructors, so a file
that is not a CIFAR pickle cannot run code. Instance ids are row numbers (the
training split is batches 1..5 in order), stable across reads.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile

import numpy as np

from tf_contrastive.core.config import ConfigError
from tf_contrastive.data import arrays

ROW_BYTES = 3 * 32 * 32
FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
ARCHIVES = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}
MEMBERS = {
    "cifar10": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
    "cifar100": {"train": ["train"], "test": ["test"]},
}
LABEL_KINDS = ("fine", "coarse")  # dataset.cifar100_labels
# The globals a numpy-array pickle needs (numpy 1.x and 2.x module names).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # bytes in a protocol-2 pickle written by Python 3
}


class _ArraysOnly(pickle.Unpickler):
    def __init__(self, f, where: str):
        super().__init__(f, encoding="bytes")
        self.where = where

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"refers to {module}.{name}, which a CIFAR pickle does not hold"
            )
        return super().find_class(module, name)


def _load_pickle(data: bytes, where: str) -> dict:
    try:
        obj = _ArraysOnly(io.BytesIO(data), where).load()
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise ValueError(f"{where}: not a readable CIFAR pickle ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: not a CIFAR pickle (holds a {type(obj).__name__}, not a dict)")
    return obj


def _source(name: str, data_dir: str) -> tuple[str, str]:
    """("dir", folder) or ("tar", archive) for ``data_dir``; the error lists what was tried."""
    folder, archive = FOLDERS[name], ARCHIVES[name]
    first = MEMBERS[name]["test"][0]
    if os.path.isfile(data_dir):
        return "tar", data_dir
    for d in (data_dir, os.path.join(data_dir, folder)):
        if os.path.isfile(os.path.join(d, first)):
            return "dir", d
    if os.path.isfile(os.path.join(data_dir, archive)):
        return "tar", os.path.join(data_dir, archive)
    raise FileNotFoundError(
        f"config.dataset.data_dir: {data_dir or '(empty)'} is neither a "
        f"{folder}/ folder (no {first} in it or in {folder}/ below it) nor "
        f"holds {archive}"
    )


def _read_members(name: str, data_dir: str, members: list[str]) -> dict[str, tuple[bytes, str]]:
    """member -> (bytes, where) for the split's pickles; a missing one is named."""
    kind, path = _source(name, data_dir)
    found: dict[str, tuple[bytes, str]] = {}
    if kind == "dir":
        for m in members:
            p = os.path.join(path, m)
            if not os.path.isfile(p):
                raise FileNotFoundError(
                    f"{p}: missing (the {FOLDERS[name]}/ folder needs {', '.join(members)})"
                )
            with open(p, "rb") as f:
                found[m] = f.read(), p
        return found
    try:
        with tarfile.open(path, "r:*") as tar:
            for info in tar:  # one pass over the stream, in archive order
                base = os.path.basename(info.name)
                parent = os.path.basename(os.path.dirname(info.name))
                if info.isfile() and base in members and parent == FOLDERS[name]:
                    found[base] = tar.extractfile(info).read(), f"{path}:{info.name}"
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise ValueError(
            f"{path}: not a readable {ARCHIVES[name]} ({type(e).__name__}: {e})"
        ) from e
    missing = [m for m in members if m not in found]
    if missing:
        raise FileNotFoundError(f"{path}: the archive has no {FOLDERS[name]}/{', '.join(missing)}")
    return found


def _rows(batch: dict, where: str) -> np.ndarray:
    data = batch.get(b"data")
    if data is None:
        raise ValueError(f"{where}: no b'data' entry (keys: {sorted(batch)})")
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW_BYTES:
        raise ValueError(
            f"{where}: b'data' must be uint8 rows of {ROW_BYTES} bytes (3 planes "
            f"of 32x32), got {data.dtype} {data.shape}"
        )
    return data


def _labels(batch: dict, key: bytes, rows: int, where: str) -> np.ndarray:
    if key not in batch:
        raise ValueError(f"{where}: no {key!r} entry (keys: {sorted(batch)})")
    y = np.asarray(batch[key], dtype=np.int64)
    if y.shape != (rows,):
        raise ValueError(f"{where}: {len(y)} labels for {rows} images")
    return y.astype(np.int32)


def load(
    name: str, split: str, data_dir: str, label_kind: str = "fine"
) -> tuple[np.ndarray, np.ndarray]:
    """``split`` ('train' or 'test') as (N, 32, 32, 3) uint8 images and int32 labels."""
    if split not in ("train", "test"):
        raise ValueError(f"{name} has splits 'train' and 'test', not {split!r}")
    if not data_dir:
        raise ConfigError(
            f"config.dataset.data_dir: {name} needs the {FOLDERS[name]}/ folder or {ARCHIVES[name]}"
        )
    if label_kind not in LABEL_KINDS:
        raise ConfigError(
            f"config.dataset.cifar100_labels: {label_kind!r} is not one of {LABEL_KINDS}"
        )
    key = b"labels" if name == "cifar10" else f"{label_kind}_labels".encode()
    members = MEMBERS[name][split]
    raw = _read_members(name, data_dir, members)
    images, labels = [], []
    for m in members:  # batches 1..5 in order: ids are stable row numbers
        data, where = raw[m]
        batch = _load_pickle(data, where)
        rows = _rows(batch, where)
        images.append(rows)
        labels.append(_labels(batch, key, len(rows), where))
    x = np.concatenate(images).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), np.concatenate(labels)


def digest(name: str, data_dir: str, label_kind: str = "fine") -> str:
    """sha256 of the training images and labels (the run fingerprint's data digest)."""
    images, labels = load(name, "train", data_dir, label_kind)
    h = hashlib.sha256(images.tobytes())
    h.update(labels.tobytes())
    return "sha256:" + h.hexdigest()


class CifarFamily(arrays.ArrayFamily):
    """``dataset.name`` "cifar10" or "cifar100": the pickles held in memory as arrays
    (ids are row numbers); CIFAR-100's labels are ``dataset.cifar100_labels``."""

    def check_config(self, cfg) -> None:
        super().check_config(cfg)
        if cfg.dataset.cifar100_labels not in LABEL_KINDS:
            raise ConfigError(f"config.dataset.cifar100_labels: {cfg.dataset.cifar100_labels!r} "
                              f"is not one of {LABEL_KINDS}")

    def load(self, split, data_dir, *options):
        return load(self.name, split, data_dir, *options)

    def options(self, ds_cfg) -> tuple:
        return (str(ds_cfg.cifar100_labels),) if self.name == "cifar100" else ()

    def published_classes(self, ds_cfg) -> int:
        if self.name == "cifar100":
            return 20 if ds_cfg.cifar100_labels == "coarse" else 100
        return 10

    def train_digest(self, ds_cfg) -> str:
        return digest(self.name, ds_cfg.data_dir, *self.options(ds_cfg))
