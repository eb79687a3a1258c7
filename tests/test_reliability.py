"""Failures stop cleanly and name their cause; nothing good is overwritten."""

import os

import numpy as np
import pytest

from tests.test_train_e2e import _smoke_cfg
from tf_contrastive import trainer
from tf_contrastive.core.config import ConfigError


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path):
    cfg = _smoke_cfg()
    cfg.train.epochs = 1
    cfg.eval.projector_examples = 0
    trainer.run(cfg, str(tmp_path), verbose=0)  # one good epoch: ckpt-1
    before = sorted(os.listdir(tmp_path / "checkpoints"))
    cfg.train.epochs = 2
    cfg.optimizer.learning_rate = 1e30  # diverges within a few steps
    with pytest.raises(FloatingPointError, match=r"non-finite loss .* at epoch 2, step \d+"):
        trainer.run(cfg, str(tmp_path), verbose=0)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == before
    cfg.optimizer.learning_rate = 0.03
    results = trainer.run(cfg, str(tmp_path), verbose=0)  # resumes from the good one
    assert results["trained_epochs_this_run"] == 1 and np.isfinite(results["final_loss"])


def test_unwritable_workdir_fails_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError, match=f"--workdir {blocker}/run: not writable"):
        trainer.run(_smoke_cfg(), str(blocker / "run"), verbose=0)


def test_impossible_config_fails_before_any_work(tmp_path):
    cfg = _smoke_cfg()
    cfg.instdisc.num_negatives = 5000  # digits has 1500 training images
    with pytest.raises(ConfigError, match="instdisc.num_negatives: K=5000 must be < N=1500"):
        trainer.run(cfg, str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run").exists()
