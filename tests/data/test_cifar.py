"""CIFAR-10/100 read from tiny pickles in the distributed layout (folder and .tar.gz)."""

import os
import pickle

import numpy as np
import pytest

from tests.data import distributed_files as files
from tf_contrastive.core.config import ConfigError, base_config
from tf_contrastive.data import cifar, families, pipeline


def test_cifar10_folder_pixels_labels_and_ids_match_a_plain_decode(tmp_path):
    members = files.cifar10_batches(rows=6)
    d = files.write_folder(str(tmp_path), "cifar-10-batches-py", members)
    x, y = cifar.load("cifar10", "train", d)
    assert x.shape == (30, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    rows = np.concatenate([members[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    for i in range(30):  # ids are row numbers: batches 1..5 in order
        np.testing.assert_array_equal(x[i], files.cifar_decode(rows[i]))
    np.testing.assert_array_equal(
        y, sum((members[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    )
    x_again, _ = cifar.load("cifar10", "train", str(tmp_path))  # the parent folder works too
    np.testing.assert_array_equal(x, x_again)
    xt, yt = cifar.load("cifar10", "test", d)
    np.testing.assert_array_equal(xt[5], files.cifar_decode(members["test_batch"][b"data"][5]))
    np.testing.assert_array_equal(yt, members["test_batch"][b"labels"])


def test_cifar10_archive_reads_the_same_arrays_without_extracting(tmp_path):
    members = files.cifar10_batches(seed=3, rows=4)
    d = files.write_folder(str(tmp_path / "x"), "cifar-10-batches-py", members)
    tgz = files.write_tar_gz(
        str(tmp_path / "cifar-10-python.tar.gz"), "cifar-10-batches-py", members
    )
    for split in ("train", "test"):
        a, b = cifar.load("cifar10", split, d), cifar.load("cifar10", split, tgz)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # A folder holding the archive reads it too.
    np.testing.assert_array_equal(cifar.load("cifar10", "test", str(tmp_path))[1], a[1])
    assert sorted(os.listdir(tmp_path)) == ["cifar-10-python.tar.gz", "x"]  # nothing extracted


def test_cifar100_fine_and_coarse_labels(tmp_path):
    members = files.cifar100_members(rows=8)
    tgz = files.write_tar_gz(str(tmp_path / "cifar-100-python.tar.gz"), "cifar-100-python", members)
    x, fine = cifar.load("cifar100", "train", tgz)
    _, coarse = cifar.load("cifar100", "train", tgz, "coarse")
    np.testing.assert_array_equal(fine, members["train"][b"fine_labels"])
    np.testing.assert_array_equal(coarse, members["train"][b"coarse_labels"])
    np.testing.assert_array_equal(x[7], files.cifar_decode(members["train"][b"data"][7]))
    with pytest.raises(ConfigError, match="cifar100_labels"):
        cifar.load("cifar100", "train", tgz, "medium")
    # The family: the label kind sets the class count and the run fingerprint's digest.
    family, cfg = families.get("cifar100"), base_config()
    cfg.dataset.name, cfg.dataset.data_dir = "cifar100", tgz
    fine_info, fine_facts = family.describe(cfg.dataset), family.run_facts(cfg.dataset)
    cfg.dataset.cifar100_labels = "coarse"
    assert (fine_info.num_classes, family.describe(cfg.dataset).num_classes) == (100, 20)
    assert family.run_facts(cfg.dataset) != fine_facts
    cfg.dataset.cifar100_labels = "medium"
    with pytest.raises(ConfigError, match="config.dataset.cifar100_labels"):
        pipeline.check_config(cfg)


def test_bad_files_are_named(tmp_path):
    members = files.cifar10_batches(rows=2)
    d = files.write_folder(str(tmp_path), "cifar-10-batches-py", members)
    os.remove(os.path.join(d, "data_batch_3"))
    with pytest.raises(FileNotFoundError, match="data_batch_3: missing"):
        cifar.load("cifar10", "train", d)
    # Rows of the wrong length.
    short = {**members["test_batch"], b"data": members["test_batch"][b"data"][:, :3071]}
    with open(os.path.join(d, "test_batch"), "wb") as f:
        pickle.dump(short, f, protocol=2)
    with pytest.raises(ValueError, match="test_batch: b'data' must be uint8 rows of 3072"):
        cifar.load("cifar10", "test", d)
    # A truncated pickle.
    data = pickle.dumps(members["test_batch"], protocol=2)
    with open(os.path.join(d, "test_batch"), "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="test_batch: not a readable CIFAR pickle"):
        cifar.load("cifar10", "test", d)
    # A pickle that would call a function is refused before it runs.
    with open(os.path.join(d, "test_batch"), "wb") as f:
        f.write(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(ValueError, match="test_batch: .*refers to os.system"):
        cifar.load("cifar10", "test", d)
    # A truncated archive.
    tgz = files.write_tar_gz(
        str(tmp_path / "cifar-10-python.tar.gz"), "cifar-10-batches-py", members
    )
    with open(tgz, "r+b") as f:
        f.truncate(os.path.getsize(tgz) // 2)
    with pytest.raises(ValueError, match="cifar-10-python.tar.gz: not a readable"):
        cifar.load("cifar10", "train", tgz)
    with pytest.raises(FileNotFoundError, match="config.dataset.data_dir: .* cifar-10-batches-py"):
        cifar.load("cifar10", "train", str(tmp_path / "nowhere"))


def test_pipeline_streams_cifar10_with_stable_ids(tmp_path):
    members = files.cifar10_batches(rows=6)
    d = files.write_folder(str(tmp_path), "cifar-10-batches-py", members)
    cfg = base_config()
    cfg.dataset.name, cfg.dataset.data_dir, cfg.dataset.image_size = "cifar10", d, 32
    cfg.train.batch_size = 10
    info = pipeline.describe(cfg.dataset)
    assert (info.num_train, info.num_eval, info.image_shape) == (30, 6, (32, 32, 3))
    x, y = cifar.load("cifar10", "train", d)
    batch = next(iter(pipeline.build_dataset(cfg)))
    np.testing.assert_array_equal(batch["label"].numpy(), y[batch["index"].numpy()])
    assert batch["image"].shape == (10, 32, 32, 3)
    for _ in range(2):  # the evaluation view is the image itself, id = row number
        ev = next(iter(pipeline.build_dataset(cfg, split="train", training=False)))
        np.testing.assert_array_equal(ev["index"].numpy(), np.arange(30))
        np.testing.assert_allclose(ev["image"].numpy(), x / 255.0, atol=1e-6)
