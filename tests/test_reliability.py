"""Failures stop cleanly and name their cause; nothing good is overwritten."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.test_train_e2e import ROOT, _smoke_cfg
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


def _train_cmd(workdir):
    return [sys.executable, "-m", "tf_contrastive.train",
            "--config=configs/smoke_instdisc_digits.py", f"--workdir={workdir}",
            "--config.train.epochs=2", "--config.train.steps_per_epoch=30",
            "--config.eval.knn_at_init=False", "--config.eval.projector_examples=0",
            "--config.train.export=False", "--config.eval.every_epochs=5",
            "--config.deterministic=True"]


def _final_weights(workdir):
    reader = tf.train.load_checkpoint(os.path.join(workdir, "checkpoints"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "save_counter" not in name}


# The killed run is the trainer with one extra callback that SIGKILLs its own
# process at step 10 of epoch 2: a real kill at a known point, with no race.
_KILL_MID_EPOCH_2 = """
import os, signal, sys
import keras
from absl import flags
from ml_collections import config_flags
from tf_contrastive import trainer

config = config_flags.DEFINE_config_file("config")
flags.DEFINE_string("workdir", None, "")


class KillAt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 10:
            os.kill(os.getpid(), signal.SIGKILL)


flags.FLAGS(sys.argv)
trainer.run(config.value, flags.FLAGS.workdir, verbose=0, callbacks=[KillAt()])
"""


def test_sigkill_mid_epoch_then_rerun_ends_where_an_uninterrupted_run_ends(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    killed = str(tmp_path / "killed")
    proc = subprocess.run([sys.executable, "-c", _KILL_MID_EPOCH_2, *_train_cmd(killed)[3:]],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert os.path.exists(os.path.join(killed, "checkpoints", "ckpt-1.index"))
    assert not os.path.exists(os.path.join(killed, "checkpoints", "ckpt-2.index"))
    rerun = subprocess.run(_train_cmd(killed), cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming from" in rerun.stdout and "at epoch 1" in rerun.stdout
    clean = str(tmp_path / "clean")
    done = subprocess.run(_train_cmd(clean), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = _final_weights(killed), _final_weights(clean)
    assert a.keys() == b.keys()
    for name in a:  # same data order, augmentations, noise ids and kernels: bit-identical
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
