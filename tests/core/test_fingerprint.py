"""A resume refuses what its checkpoints cannot continue (core/fingerprint.py).

Each case trains the smoke config for one epoch, then reruns it in a copy of
that run dir with one change: real runs, real checkpoints.
"""

import json
import os
import shutil

import numpy as np
import pytest

from tests.helpers import smoke_cfg
from tf_contrastive import trainer
from tf_contrastive.core import fingerprint as fp_lib
from tf_contrastive.core.checkpoint import CheckpointMismatch
from tf_contrastive.core.config import ConfigError, validate


def _cfg(**train):
    cfg = smoke_cfg()
    cfg.train.epochs = 1
    cfg.train.export = False
    cfg.eval.knn_at_init = False
    cfg.eval.projector_examples = 0
    cfg.eval.every_epochs = 5  # the kNN monitor only at the end
    for key, value in train.items():
        setattr(cfg.train, key, value)
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("trained"))
    trainer.run(_cfg(), workdir, verbose=0)
    return workdir


@pytest.fixture
def copy(trained, tmp_path):
    workdir = str(tmp_path / "run")
    shutil.copytree(trained, workdir)
    return workdir


def _files(workdir):
    out = {}
    for root, _, names in os.walk(workdir):
        for name in names:
            st = os.stat(os.path.join(root, name))
            out[os.path.join(root, name)] = (st.st_size, st.st_mtime_ns)
    return out


def _refused(cfg, workdir, *patterns):
    before = _files(workdir)
    with pytest.raises(fp_lib.ResumeMismatch) as err:
        trainer.run(cfg, workdir, verbose=0)
    assert _files(workdir) == before  # stopped before writing anything
    for pattern in patterns:
        assert pattern in str(err.value), str(err.value)
    return str(err.value)


def test_the_fingerprint_is_kept_beside_the_checkpoints(trained):
    stored = json.load(open(os.path.join(trained, "checkpoints", fp_lib.FILENAME)))
    keys = stored["keys"]
    assert keys["run.num_train"] == 1500 and keys["run.steps_per_epoch"] == 4
    assert keys["instdisc.temperature"] == 0.07 and keys["train.batch_size"] == 50
    assert keys["run.train_digest"].startswith("sha256:") and keys["run.replicas"] == 1
    assert "eval.knn_k" not in keys and "cmc.temperature" not in keys
    assert stored["config_file"] == "config-0.json"
    assert json.load(open(os.path.join(trained, "config-0.json"))) == json.load(
        open(os.path.join(trained, "config.json"))
    )


def test_a_changed_temperature_with_a_frozen_z_is_refused_even_if_allowed(copy):
    cfg = _cfg(allow_changes=("instdisc.temperature",))
    cfg.instdisc.temperature = 0.1
    msg = _refused(
        cfg,
        copy,
        "instdisc.temperature: 0.07 -> 0.1  (REFUSED: NCE's normaliser Z",
        "stays frozen (instdisc.z_momentum=0)",
        "Nothing was written or restored",
    )
    assert msg.startswith(f"{copy}/checkpoints: cannot resume")


def test_turning_the_online_probe_on_is_refused_even_if_allowed(copy):
    cfg = _cfg(allow_changes=("probe.online",))
    cfg.probe.online = True
    _refused(cfg, copy, "probe.online: false -> true  (REFUSED: the online probe's classifier")


def test_a_changed_temperature_is_accepted_when_z_follows_it(copy, capsys):
    cfg = _cfg(
        epochs=2, allow_changes=("instdisc.temperature", "instdisc.z_momentum", "train.epochs")
    )
    cfg.instdisc.temperature, cfg.instdisc.z_momentum = 0.1, 0.9
    results = trainer.run(cfg, copy, verbose=0)
    assert results["trained_epochs_this_run"] == 1
    assert "resuming with a changed instdisc.temperature: 0.07 -> 0.1" in capsys.readouterr().out


def test_another_dataset_with_the_same_n_is_refused(copy):
    cfg = _cfg(allow_changes=("dataset.name", "dataset.train_limit", "run.train_digest"))
    cfg.dataset.name, cfg.dataset.train_limit = "fashion_mnist", 1500
    _refused(
        cfg,
        copy,
        'dataset.name: "digits" -> "fashion_mnist"  (REFUSED: dataset identity',
        'run.train_digest: "sha256:',
    )
    assert "run.num_train" not in _refused(cfg, copy)


def test_another_n_is_reported_as_such_not_as_a_damaged_checkpoint(copy):
    cfg = _cfg()
    cfg.dataset.train_limit = 1000
    _refused(
        cfg,
        copy,
        "run.num_train: 1500 -> 1000  (REFUSED: N, the number of training "
        "examples, is the memory bank's row count",
    )


def test_an_old_checkpoint_without_fingerprint_names_the_mismatched_variable(copy, capsys):
    os.remove(os.path.join(copy, "checkpoints", fp_lib.FILENAME))
    cfg = _cfg()
    cfg.dataset.train_limit = 1000
    with pytest.raises(CheckpointMismatch) as err:
        trainer.run(cfg, copy, verbose=0)
    msg = str(err.value)
    assert msg.startswith(f"{copy}/checkpoints/ckpt-1: variable ")
    assert "bank" in msg and "has shape (1500, 16) in the checkpoint but (1000, 16)" in msg
    out = capsys.readouterr().out
    assert "has no fingerprint.json" in out and "cannot be restored" not in out


def test_a_changed_batch_size_must_be_allowed(copy):
    cfg = _cfg(steps_per_epoch=0, batch_size=100)
    _refused(
        cfg,
        copy,
        "train.batch_size: 50 -> 100  (not in config.train.allow_changes)",
        "run.steps_per_epoch: 4 -> 15",
        "train.steps_per_epoch: 4 -> 0",
        "--config.train.allow_changes=\"('run.steps_per_epoch','train.batch_size',"
        "'train.steps_per_epoch',)\"",
    )


def test_a_changed_batch_size_never_prefers_an_older_backup(tmp_path, capsys):
    # 15 steps an epoch, a backup every 7 steps: backup-28 (epoch 2, step 13), then ckpt-2.
    workdir = str(tmp_path / "run")
    trainer.run(
        _cfg(epochs=2, steps_per_epoch=0, batch_size=100, backup_every_steps=7), workdir, verbose=0
    )
    assert os.path.exists(os.path.join(workdir, "checkpoints", "backup", "ckpt-28.index"))
    capsys.readouterr()
    # 5 steps an epoch now: counted in the new epochs, step 28 would look like epoch 6.
    cfg = _cfg(
        epochs=3,
        steps_per_epoch=0,
        batch_size=300,
        allow_changes=("train.batch_size", "run.steps_per_epoch", "train.epochs"),
    )
    results, model = trainer.run(cfg, workdir, verbose=0, return_model=True)
    out = capsys.readouterr().out
    assert f"resuming from {workdir}/checkpoints/ckpt-2 at epoch 2\n" in out
    assert results["trained_epochs_this_run"] == 1
    assert int(model.optimizer.iterations.numpy()) == 3 * 5


def test_an_allowed_change_of_epochs_resumes_and_keeps_each_config(copy, capsys):
    cfg = _cfg(epochs=2)
    _refused(
        cfg,
        copy,
        "train.epochs: 1 -> 2  (not in config.train.allow_changes)",
        "--config.train.allow_changes=\"('train.epochs',)\"",
    )
    cfg.train.allow_changes = ("train.epochs",)
    cfg.eval.knn_k = 10  # reporting only: never part of the fingerprint
    results = trainer.run(cfg, copy, verbose=0)
    assert "resuming from" in capsys.readouterr().out
    assert results["trained_epochs_this_run"] == 1 and np.isfinite(results["final_loss"])
    first, second = (json.load(open(os.path.join(copy, f"config-{n}.json"))) for n in (0, 1))
    assert first["train"]["epochs"] == 1 and second["train"]["epochs"] == 2
    assert json.load(open(os.path.join(copy, "config.json"))) == second
    stored = fp_lib.load(os.path.join(copy, "checkpoints"))
    assert stored["keys"]["train.epochs"] == 2 and stored["config_file"] == "config-1.json"
    again = trainer.run(cfg, copy, verbose=0)  # the same command again: nothing changed
    assert again["trained_epochs_this_run"] == 0


def test_allow_changes_names_known_keys_only():
    cfg = _cfg(allow_changes=("train.epoch",))
    with pytest.raises(
        ConfigError,
        match=r"config.train.allow_changes: 'train.epoch' is not a "
        "config key",
    ):
        validate(cfg)
    cfg.train.allow_changes = ("train.epochs", "run.steps_per_epoch")
    validate(cfg)
