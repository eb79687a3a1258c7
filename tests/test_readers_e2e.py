"""Every new reader trains end to end (trainer.run, the training binary's body) on tiny
files in its distributed layout: CIFAR-10 folder, CIFAR-100 archive with coarse labels,
STL-10 train+unlabeled, ImageNet in the TensorFlow Datasets layout. One process."""

import json
import os

import numpy as np

from tests.data import distributed_files as files
from tests.helpers import train_in_subprocess

_COMMON = {
    "train.epochs": 1,
    "train.steps_per_epoch": 2,
    "train.export": False,
    "eval.knn_at_init": False,
    "eval.projector_examples": 0,
    "eval.knn_k": 5,
}


def test_each_reader_trains_through_the_trainer(tmp_path):
    root = str(tmp_path)
    cifar10 = files.write_folder(root, "cifar-10-batches-py", files.cifar10_batches(rows=6))
    cifar100 = files.write_tar_gz(
        os.path.join(root, "cifar-100-python.tar.gz"),
        "cifar-100-python",
        files.cifar100_members(rows=24),
    )
    stl = files.write_stl10(root, train=6, test=4, unlabeled=10)
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
    small = {
        "dataset.image_size": 16,
        "train.batch_size": 4,
        "instdisc.num_negatives": 8,
        "eval.batch_size": 8,
    }
    runs = {
        "cifar10": {"dataset.name": "cifar10", "dataset.data_dir": cifar10, **small},
        "cifar100": {
            "dataset.name": "cifar100",
            "dataset.data_dir": cifar100,
            "dataset.cifar100_labels": "coarse",
            **small,
        },
        "stl10": {
            "dataset.name": "stl10",
            "dataset.data_dir": stl,
            "instdisc.warm_start": False,
            **small,
        },
        "tfds": {
            "dataset.name": "imagenet",
            "dataset.data_dir": tfds,
            "dataset.num_classes": 3,
            "dataset.shuffle_buffer": 4,
            **small,
            "instdisc.num_negatives": 4,
        },
    }
    jobs = [
        {
            "config": "smoke_instdisc_digits",
            "workdir": os.path.join(root, "runs", name),
            "overrides": {**_COMMON, **overrides},
        }
        for name, overrides in runs.items()
    ]
    train_in_subprocess(jobs)
    for name, expect in (
        ("cifar10", (30, 10)),
        ("cifar100", (24, 20)),
        ("stl10", (16, 10)),
        ("tfds", (8, 3)),
    ):
        workdir = os.path.join(root, "runs", name)
        results = json.load(open(os.path.join(workdir, "results.json")))
        assert np.isfinite(results["final_loss"]) and 0 <= results["knn_top1"] <= 1, name
        fingerprint = json.load(open(os.path.join(workdir, "checkpoints", "fingerprint.json")))
        assert (
            fingerprint["keys"]["run.num_train"],
            fingerprint["keys"]["run.num_classes"],
        ) == expect, name
