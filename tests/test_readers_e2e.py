"""Each reader trains end to end on tiny files in its distributed layout, through the
trainer in one shared subprocess (``trainer.run``, the training binary's body): STL-10
train+unlabeled (memory-mapped rows gathered per batch, label -1 rows in the bank, kNN
on the labelled train split), CIFAR-10 from its ``cifar-10-batches-py/`` pickles (in
memory, as the digits runs) and ImageNet in the TensorFlow Datasets layout (TFDS shard
names and keys, 0-based labels). The image_folder reader runs through the binary
itself (``python -m tf_contrastive.train``): an unlabeled folder of nested JPEGs and
PNGs, with a labeled ``dataset.eval_dir`` turning the kNN monitor on. Reading, pixels
and ids are checked in tests/data/."""

import json
import os

import numpy as np

from tests.data import distributed_files as files
from tests.data.test_image_folder import write_mixed
from tests.helpers import run_module, train_in_subprocess

_SMALL = {
    "train.epochs": 1,
    "train.steps_per_epoch": 1,
    "train.export": False,
    "train.batch_size": 4,
    "dataset.image_size": 8,
    "instdisc.num_negatives": 4,
    "instdisc.warm_start": False,
    "eval.knn_at_init": False,
    "eval.projector_examples": 0,
    "eval.knn_k": 3,
    "eval.batch_size": 8,
}


def _results_and_keys(workdir):
    with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)
    with open(os.path.join(workdir, "checkpoints", "fingerprint.json")) as f:
        return results, json.load(f)["keys"]


def test_stl10_cifar10_and_tfds_imagenet_train_through_the_trainer(tmp_path):
    root = str(tmp_path)
    stl = files.write_stl10(root, train=6, test=4, unlabeled=10)
    cifar = files.write_folder(root, "cifar-10-batches-py", files.cifar10_batches(rows=2))
    rng = np.random.default_rng(0)
    tfds = os.path.join(root, "tfds")
    files.write_tfds_imagenet(
        tfds, rng.integers(0, 256, (8, 24, 24, 3), np.uint8), np.arange(8) % 3, shards=2
    )
    files.write_tfds_imagenet(
        tfds,
        rng.integers(0, 256, (4, 24, 24, 3), np.uint8),
        np.arange(4) % 3,
        shards=1,
        split="validation",
    )
    runs = {
        "stl10": {"dataset.name": "stl10", "dataset.data_dir": stl},
        "cifar10": {"dataset.name": "cifar10", "dataset.data_dir": cifar},
        "tfds": {
            "dataset.name": "imagenet",
            "dataset.data_dir": tfds,
            "dataset.num_classes": 3,
            "dataset.shuffle_buffer": 4,
        },
    }
    jobs = [
        {
            "config": "smoke_instdisc_digits",
            "workdir": os.path.join(root, name),
            "overrides": {**_SMALL, **overrides},
        }
        for name, overrides in runs.items()
    ]
    train_in_subprocess(jobs)
    for name, expect in (("stl10", (16, 10)), ("cifar10", (10, 10)), ("tfds", (8, 3))):
        results, keys = _results_and_keys(os.path.join(root, name))
        assert np.isfinite(results["final_loss"]) and 0 <= results["knn_top1"] <= 1, name
        assert (keys["run.num_train"], keys["run.num_classes"]) == expect, name
        if name == "tfds":  # identified by its shards, the arrays by a digest
            assert [s[:2] for s in keys["run.train_shards"]] == [
                ["imagenet2012-train.tfrecord-00000-of-00002", 4],
                ["imagenet2012-train.tfrecord-00001-of-00002", 4],
            ]
        else:
            assert keys["run.train_digest"].startswith("sha256:"), name


def test_image_folder_trains_through_the_binary(tmp_path):
    photos = write_mixed(str(tmp_path / "photos"))  # 7 nested JPEGs and PNGs, one .txt
    labeled = tmp_path / "labeled"
    write_mixed(str(labeled / "train"), names=("dog/1.jpg", "cat/deep/2.png", "cat/3.jpg"))
    write_mixed(str(labeled / "val"), names=("dog/4.png", "cat/5.jpg"), seed=1)
    workdir = str(tmp_path / "run")
    flags = {
        **_SMALL,
        "dataset.name": "image_folder",
        "dataset.data_dir": photos,
        "dataset.eval_dir": str(labeled),
    }
    proc = run_module(
        "tf_contrastive.train",
        "--config=smoke_instdisc_digits",
        f"--workdir={workdir}",
        *(f"--config.{k}={v}" for k, v in flags.items()),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"image_folder: 7 images under {photos}, unlabeled" in proc.stdout
    assert "2 classes (sorted class folder names)" in proc.stdout  # what the run did
    assert "final kNN top-1" in proc.stdout
    results, keys = _results_and_keys(workdir)
    assert np.isfinite(results["final_loss"]) and "knn_off" not in results
    assert (keys["run.num_train"], keys["run.num_classes"]) == (7, 2)
    assert keys["run.train_digest"].startswith("sha256:")
