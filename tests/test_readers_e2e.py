"""The readers whose path through the trainer differs from the shared smoke runs' train
end to end (trainer.run, the training binary's body) on tiny files in their distributed
layout, in one process: STL-10 train+unlabeled (memory-mapped rows gathered per batch,
label -1 rows in the bank, kNN on the labelled train split) and CIFAR-100 from its
archive with coarse labels (the loader's option in the run's fingerprint). CIFAR-10 and
the TFDS ImageNet layout share these families' code paths (tests/data/test_cifar.py,
tests/data/test_tfds_imagenet.py check their reading; the shared ``cmc_tfrecords`` run
trains on ImageNet-schema records)."""

import json
import os

import numpy as np

from tests.data import distributed_files as files
from tests.helpers import train_in_subprocess

_SMALL = {
    "train.epochs": 1,
    "train.steps_per_epoch": 1,
    "train.export": False,
    "train.batch_size": 4,
    "dataset.image_size": 8,
    "instdisc.num_negatives": 4,
    "eval.knn_at_init": False,
    "eval.projector_examples": 0,
    "eval.knn_k": 3,
    "eval.batch_size": 8,
}


def test_stl10_and_cifar100_train_through_the_trainer(tmp_path):
    root = str(tmp_path)
    stl = files.write_stl10(root, train=6, test=4, unlabeled=10)
    cifar100 = files.write_tar_gz(
        os.path.join(root, "cifar-100-python.tar.gz"),
        "cifar-100-python",
        files.cifar100_members(rows=24),
    )
    runs = {
        "stl10": {"dataset.name": "stl10", "dataset.data_dir": stl, "instdisc.warm_start": False},
        "cifar100": {
            "dataset.name": "cifar100",
            "dataset.data_dir": cifar100,
            "dataset.cifar100_labels": "coarse",
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
    for name, expect in (("stl10", (16, 10)), ("cifar100", (24, 20))):
        workdir = os.path.join(root, name)
        with open(os.path.join(workdir, "results.json")) as f:
            results = json.load(f)
        assert np.isfinite(results["final_loss"]) and 0 <= results["knn_top1"] <= 1, name
        with open(os.path.join(workdir, "checkpoints", "fingerprint.json")) as f:
            keys = json.load(f)["keys"]
        assert (keys["run.num_train"], keys["run.num_classes"]) == expect, name
        assert keys["run.train_digest"].startswith("sha256:"), name
