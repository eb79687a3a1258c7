"""MoCo through the trainer: the shared ``moco`` smoke run (one device, 2 epochs of 3 steps
of 32 keys into an 80-key queue) trains, reports kNN and checkpoints the queue, its pointer
and the key encoder. (Restore and continuation: tests/methods/test_moco.py; two replicas
with shuffled BN: tests/methods/test_replicas.py.)"""

import numpy as np

from tests.helpers import checkpoint_values
from tf_contrastive import trainer


def test_moco_run_checkpoints_its_wrapped_queue_and_a_trailing_key_encoder(smoke_runs):
    run = smoke_runs["moco"]
    results = run["results"]
    assert results["trained_epochs_this_run"] == 2 and np.isfinite(results["final_loss"])
    assert 0.0 < results["knn_top1"] <= results["knn_top5"] <= 1.0
    values = checkpoint_values(run["workdir"])
    pointer = [v for k, v in values.items() if "queue" in k and "pointer" in k]
    assert [int(p) for p in pointer] == [6 * 32 % 80]  # 192 keys: wrapped twice
    keys = [v for k, v in values.items() if "queue" in k and "keys" in k]
    assert len(keys) == 1 and keys[0].shape == (80, 16)
    np.testing.assert_allclose(np.linalg.norm(keys[0], axis=1), 1.0, rtol=1e-5)
    # The run's model restored from its last checkpoint: m = 0.9 over 6 steps, so the key
    # encoder trails the query encoder in every parameter the optimizer moved.
    _, model, _ = trainer.restore_run(run["workdir"])
    np.testing.assert_array_equal(model.queue.keys.numpy(), keys[0])
    pairs = [
        (q, k)
        for q, k in zip(model.encoder.weights, model.key_encoder.weights, strict=True)
        if q.trainable
    ]
    assert pairs and all(not np.array_equal(q.numpy(), k.numpy()) for q, k in pairs)
