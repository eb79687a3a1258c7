"""The tiny runs the end-to-end tests share, trained once per session in one fresh process.

Each run is a smoke config with ``deterministic=True``: the uninterrupted
reference the SIGKILL tests compare with, and the source of the exports, the
checkpoints and the kNN figures the other tests check.
"""

import json
import os

import pytest

from tests.helpers import train_in_subprocess, write_jpeg_folder
from tools.build_imagenet_tfrecords import convert

# Small enough for seconds; what every run shares.
_COMMON = {
    "train.epochs": 2,
    "deterministic": True,
    "eval.knn_at_init": False,
    "eval.projector_examples": 0,
    "eval.every_epochs": 5,
}
_DIGITS = {"dataset.train_limit": 400, "dataset.eval_limit": 100}
# tests/test_cpc_e2e.py reloads a CPC audio export; MoCo exports its query encoder through
# the default ContrastiveModel.export, which the other image runs' exports test.
_NO_EXPORT = ("cpc_audio", "moco")


@pytest.fixture(scope="session")
def imagenet_records(tmp_path_factory):
    """ImageNet-schema TFRecords converted by tools/build_imagenet_tfrecords.py from JPEGs."""
    folder = str(tmp_path_factory.mktemp("jpeg_folder"))
    out = str(tmp_path_factory.mktemp("imagenet_records"))
    write_jpeg_folder(folder)  # 12 training, 6 validation images of 3 classes
    convert(folder, out, train_shards=2, validation_shards=1, num_threads=2)
    return out


@pytest.fixture(scope="session")
def run_specs(imagenet_records, audio_records):
    """name -> (config, overrides) of each shared run."""
    return {
        # CMC (two banks, two Zs) with L/ab views, reading ImageNet-schema records.
        "cmc_tfrecords": (
            "smoke_cmc_digits",
            {
                **_COMMON,
                "dataset.name": "imagenet",
                "dataset.data_dir": imagenet_records,
                "dataset.image_size": 16,
                "dataset.eval_limit": 0,
                "dataset.shuffle_buffer": 8,
                "cmc.views": "lab",
                "cmc.num_negatives": 8,
                "train.batch_size": 4,
                "train.steps_per_epoch": 3,
                "eval.batch_size": 4,
                "eval.knn_k": 5,
            },
        ),
        "invaspread": ("smoke_invaspread_digits", {**_COMMON, **_DIGITS}),
        # SimCLR: MLP head, LARS (momentum slots), jitter and blur probabilities.
        "simclr": ("smoke_simclr_digits", {**_COMMON, **_DIGITS}),
        "cpc_audio": ("smoke_cpc_audio", {**_COMMON, "dataset.data_dir": audio_records}),
        # InstDisc on MirroredStrategy over the two logical CPUs: 25 images per replica,
        # the full softmax over all 400 bank rows, with the online linear probe (so their
        # SIGKILL resume, export and restore_run too). NCE under MirroredStrategy: the
        # instdisc row of tests/methods/test_replicas.py, tools/checkpoint_digest.
        "mirrored": (
            "smoke_instdisc_digits",
            {
                **_COMMON,
                **_DIGITS,
                "strategy": "mirrored",
                "instdisc.loss": "softmax",
                "instdisc.num_negatives": 0,
                "probe.online": True,
            },
        ),
        # MoCo (tests/e2e/test_moco.py; the queue wraps in epoch 1). One device: a second
        # MirroredStrategy in this process would clash with the mirrored run's collectives
        # (two replicas and shuffled BN: tests/methods/test_replicas.py).
        "moco": ("smoke_moco_digits", {**_COMMON, **_DIGITS}),
        # Not resumed by any test: one epoch, with the untrained network's kNN figure.
        "cpc_image": (
            "smoke_cpc_image_digits",
            {**_COMMON, **_DIGITS, "train.epochs": 1, "eval.knn_at_init": True},
        ),
    }


@pytest.fixture(scope="session")
def smoke_runs(run_specs, tmp_path_factory):
    """name -> {"workdir", "results", "stdout"}: every run of ``run_specs`` to its end (with an
    export, but CPC audio's), in one process with two logical CPUs (``mirrored``: 2 replicas)."""
    root = tmp_path_factory.mktemp("smoke_runs")
    jobs = [
        {
            "config": config,
            "workdir": str(root / name),
            "overrides": {**overrides, "train.export": name not in _NO_EXPORT},
        }
        for name, (config, overrides) in run_specs.items()
    ]
    stdout = train_in_subprocess(jobs, logical_cpus=2)
    runs = {}
    for name in run_specs:
        workdir = str(root / name)
        with open(os.path.join(workdir, "results.json")) as f:
            runs[name] = {"workdir": workdir, "results": json.load(f), "stdout": stdout}
    return runs
