"""Weighted kNN: a toy set with a known answer, and chunking that changes nothing."""

import numpy as np

from tf_contrastive.eval.knn import knn_accuracy, knn_class_scores


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_toy_set_known_answer():
    # Two clusters on the circle; each query sits next to one of them.
    bank = _unit(np.array([[1, 0.1], [1, -0.1], [1, 0], [-1, 0.1], [-1, -0.1]], np.float32))
    labels = np.array([0, 0, 0, 1, 1])
    queries = _unit(np.array([[1, 0.05], [-1, 0.0]], np.float32))
    acc = knn_accuracy(queries, np.array([0, 1]), bank, labels, num_classes=2, k=3, sigma=0.1)
    assert acc["knn_top1"] == 1.0


def test_weights_are_exp_similarity_over_sigma():
    bank = _unit(np.array([[1, 0], [0, 1], [1, 1]], np.float32))
    labels = np.array([0, 1, 1])
    q = _unit(np.array([[1, 0.2]], np.float32))
    sims = bank @ q[0]
    scores = knn_class_scores(q, bank, labels, num_classes=2, k=2, sigma=0.5).numpy()[0]
    top = np.argsort(-sims)[:2]
    expected = np.zeros(2)
    for i in top:
        expected[labels[i]] += np.exp(sims[i] / 0.5)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_chunked_scan_equals_one_chunk_and_ignores_unseen_rows():
    rng = np.random.default_rng(0)
    bank = _unit(rng.normal(size=(1000, 8)).astype(np.float32))
    labels = rng.integers(0, 5, size=1000)
    labels[:100] = -1  # never seen: must not vote
    q = _unit(rng.normal(size=(37, 8)).astype(np.float32))
    full = knn_class_scores(q, bank, labels, 5, k=20, sigma=0.07, chunk=1000).numpy()
    chunked = knn_class_scores(q, bank, labels, 5, k=20, sigma=0.07, chunk=64).numpy()
    np.testing.assert_allclose(full, chunked, rtol=1e-5)
    only_seen = knn_class_scores(q, bank[100:], labels[100:], 5, k=20, sigma=0.07).numpy()
    np.testing.assert_allclose(full, only_seen, rtol=1e-5)
