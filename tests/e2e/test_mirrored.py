"""The trainer under ``config.strategy=mirrored``: two replicas (two logical CPUs) end to end.

The run is the shared ``mirrored`` smoke run (InstDisc on digits, global batch 50, the
full softmax over the bank, with the online linear probe);
its export's fresh-process reload is in test_export.py, its SIGKILL resume in
test_resume.py.
"""

import os

import numpy as np
import tensorflow as tf

from tests.helpers import checkpoint_values


def test_mirrored_run_trains_checkpoints_exports_and_reports_knn(smoke_runs):
    run = smoke_runs["mirrored"]
    workdir, results = run["workdir"], run["results"]
    assert f"{workdir}: 2 replicas in sync" in run["stdout"]
    assert results["trained_epochs_this_run"] == 2 and np.isfinite(results["final_loss"])
    assert 0.0 < results["knn_top1"] <= results["knn_top5"] <= 1.0  # the final kNN figure
    assert 0.0 < results["knn_top1_bank"] <= 1.0  # and the monitor's, from the bank
    checkpoints = os.path.join(workdir, "checkpoints")
    assert tf.train.latest_checkpoint(checkpoints) == os.path.join(checkpoints, "ckpt-2")
    values = checkpoint_values(workdir)
    steps = [v for k, v in values.items() if k.startswith("optimizer/_iterations")]
    assert [int(s) for s in steps] == [2 * 4]  # 2 epochs of 4 steps, counted once
    bank = [v for k, v in values.items() if "bank" in k and "features" in k]
    assert len(bank) == 1 and bank[0].shape == (400, 16) and np.isfinite(bank[0]).all()
    # Every row was written (warm start over all 400 ids, split between the replicas).
    np.testing.assert_allclose(np.linalg.norm(bank[0], axis=1), 1.0, rtol=1e-4)
    # The online probe: trained every step (its own step count), scored on the test split.
    assert 0.0 <= results["probe_eval_top1"] <= 1.0
    probe_steps = [v for k, v in values.items()
                   if "online_probe" in k and "optimizer/_iterations" in k]
    assert [int(s) for s in probe_steps] == [2 * 4]
    assert any(k.startswith("model/online_probe/classifier/") for k in values)
    export = results["export"]
    assert os.path.exists(os.path.join(export, "saved_model.pb"))
    assert os.path.dirname(export) == os.path.join(workdir, "export")
