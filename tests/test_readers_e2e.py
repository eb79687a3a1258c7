"""The reader whose path through the trainer differs from the shared smoke runs' trains
end to end (trainer.run, the training binary's body) on tiny files in its distributed
layout: STL-10 train+unlabeled (memory-mapped rows gathered per batch, label -1 rows in
the bank, kNN on the labelled train split). CIFAR-10/100 are in-memory arrays as the
digits runs (tests/data/test_cifar.py checks their reading, class counts and digest) and
the TFDS ImageNet layout is the ImageNet family's record path (tests/data/
test_tfds_imagenet.py; the shared ``cmc_tfrecords`` run trains on such records)."""

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


def test_stl10_trains_through_the_trainer(tmp_path):
    root = str(tmp_path)
    stl = files.write_stl10(root, train=6, test=4, unlabeled=10)
    runs = {
        "stl10": {"dataset.name": "stl10", "dataset.data_dir": stl, "instdisc.warm_start": False},
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
    for name, expect in (("stl10", (16, 10)),):
        workdir = os.path.join(root, name)
        with open(os.path.join(workdir, "results.json")) as f:
            results = json.load(f)
        assert np.isfinite(results["final_loss"]) and 0 <= results["knn_top1"] <= 1, name
        with open(os.path.join(workdir, "checkpoints", "fingerprint.json")) as f:
            keys = json.load(f)["keys"]
        assert (keys["run.num_train"], keys["run.num_classes"]) == expect, name
        assert keys["run.train_digest"].startswith("sha256:"), name
