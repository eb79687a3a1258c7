"""SIGKILL mid-epoch, rerun: the run ends bit-identical to the uninterrupted one.

For CMC (two banks and two Zs, here reading ImageNet-schema TFRecords written by
tools/build_imagenet_tfrecords.py from JPEGs), CPC audio, InstDisc on two replicas
(MirroredStrategy on two logical CPUs) and SimCLR (LARS, jitter and blur probabilities). The process kills itself after the first
training step of epoch 2; the rerun restores epoch 1's checkpoint and replays
epoch 2. tests/test_reliability.py covers InstDisc on digits, kills during a save
and mid-epoch backups.
"""

import os

import pytest

from tests.helpers import assert_bit_identical, checkpoint_values, train_in_subprocess


# InvaSpread's run is not killed: without a bank its state is the weights and the optimizer's,
# which every case here restores (its shared run still checks export and reload).
# SimCLR's is: LARS's momentum slots and the jitter and blur draws must replay too.
@pytest.mark.parametrize("name", ["cmc_tfrecords", "cpc_audio", "mirrored", "simclr"])
def test_sigkill_mid_epoch_then_rerun_is_bit_identical(name, run_specs, smoke_runs, tmp_path):
    config, overrides = run_specs[name]
    job = {
        "config": config,
        "workdir": str(tmp_path / "killed"),
        "overrides": {**overrides, "train.export": False},
    }
    train_in_subprocess([{**job, "kill_at": (1, 0)}])
    checkpoints = os.path.join(job["workdir"], "checkpoints")
    assert os.path.exists(os.path.join(checkpoints, "ckpt-1.index"))
    assert not os.path.exists(os.path.join(checkpoints, "ckpt-2.index"))
    out = train_in_subprocess([job])
    assert f"resuming from {checkpoints}/ckpt-1 at epoch 1" in out
    replicas = 2 if name == "mirrored" else 1
    assert f"{job['workdir']}: {replicas} replicas in sync" in out
    # Same data order, augmentations, noise ids and kernels: every variable bit for bit.
    assert_bit_identical(
        checkpoint_values(job["workdir"]), checkpoint_values(smoke_runs[name]["workdir"])
    )
