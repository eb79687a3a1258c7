"""Linear probes and Recall@K on inputs with known answers."""

import numpy as np
import pytest

from tf_contrastive.eval.linear_probe import check_labels, keras_probe, svm_probe
from tf_contrastive.eval.recall import recall_at_k


def _blobs(n=300, classes=3, d=8, sep=4.0, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, d)) * sep
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def test_probes_separate_separable_blobs_and_fail_on_noise():
    x, y = _blobs(n=600)
    train, test = slice(0, 400), slice(400, 600)
    assert svm_probe(x[train], y[train], x[test], y[test])["svm_top1"] > 0.95
    res = keras_probe(x[train], y[train], x[test], y[test], num_classes=3, epochs=20,
                      batch_size=32)
    assert res["linear_top1"] > 0.95
    rng = np.random.default_rng(2)
    noise = rng.normal(size=x.shape).astype(np.float32)
    chance = keras_probe(noise[train], y[train], noise[test], rng.integers(0, 3, 200), 3,
                         epochs=5, batch_size=32)
    assert chance["linear_top1"] < 0.5


def test_label_count_mismatch_names_the_field():
    with pytest.raises(ValueError, match="test labels: values span \\[0, 9\\].*num_classes=5"):
        check_labels(np.array([0, 1]), np.arange(10), 5)


def test_recall_at_k_known_answer():
    # Points 0,1 (class 0) adjacent; 2 (class 1) next to 1; 3 (class 1) far from 2.
    feats = np.array([[1, 0], [1, 0.1], [1, 0.3], [-1, 0]], np.float32)
    labels = np.array([0, 0, 1, 1])
    r = recall_at_k(feats, labels, ks=(1, 2, 3))
    # Nearest neighbours: 0->1 (hit), 1->0 (hit), 2->1 (miss), 3->2 (hit).
    assert r["recall@1"] == 0.75
    # Two nearest: 2 -> {1, 0}: miss; everything else hits.
    assert r["recall@2"] == 0.75
    assert r["recall@3"] == 1.0
