"""All evaluation protocols on extracted features, as one call that returns a flat dict.

The per-epoch kNN callback and the evaluate binary share ``knn_accuracy``, so
their figures agree by construction.
"""

from __future__ import annotations

import numpy as np

from tf_contrastive.eval.knn import knn_accuracy
from tf_contrastive.eval.linear_probe import check_labels, keras_probe, svm_probe
from tf_contrastive.eval.recall import recall_at_k

PROTOCOLS = ("knn", "linear", "svm", "recall")


def recall_classes(train_classes, num_classes: int) -> tuple[int, ...]:
    """Classes held out of training, else the upper half: the unseen categories."""
    if train_classes:
        return tuple(c for c in range(num_classes) if c not in set(train_classes))
    return tuple(range(num_classes // 2, num_classes))


def evaluate_features(train: dict, test: dict, num_classes: int, protocols, knn_k: int = 200,
                      knn_sigma: float = 0.07, probe_epochs: int = 30,
                      probe_lr: float = 0.1, unseen=(), logdir: str | None = None) -> dict:
    """Runs ``protocols`` on {'embeddings', 'features', 'labels'} dicts of arrays.

    kNN and Recall@K use the L2-normalised embeddings; the probes use the
    pooled backbone features when present (the CMC/InstDisc protocol).
    """
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"--protocols: unknown {sorted(unknown)}; known: {PROTOCOLS}")
    check_labels(train["labels"], test["labels"], num_classes)
    results: dict = {}
    if "knn" in protocols:
        results.update(knn_accuracy(test["embeddings"], test["labels"], train["embeddings"],
                                    train["labels"], num_classes, k=knn_k, sigma=knn_sigma))
    probe_train = train.get("features", train["embeddings"])
    probe_test = test.get("features", test["embeddings"])
    if "linear" in protocols:
        results.update(keras_probe(probe_train, train["labels"], probe_test, test["labels"],
                                   num_classes, epochs=probe_epochs, learning_rate=probe_lr,
                                   logdir=logdir))
    if "svm" in protocols:
        results.update(svm_probe(probe_train, train["labels"], probe_test, test["labels"]))
    if "recall" in protocols:
        keep = np.isin(test["labels"], unseen)
        if not keep.any():
            raise ValueError(f"--recall_classes: no test example has a class in {unseen}")
        scores = recall_at_k(test["embeddings"][keep], test["labels"][keep])
        results.update(scores)
        results["recall_classes"] = list(unseen)
    return results


def format_table(results: dict) -> str:
    """A two-column text table of the numeric results, in percent where fractional."""
    rows = []
    for key, value in results.items():
        if isinstance(value, float) and ("top" in key or "recall" in key):
            rows.append((key, f"{100 * value:.2f}%"))
        elif isinstance(value, (int, float)):
            rows.append((key, f"{value}"))
    width = max((len(k) for k, _ in rows), default=10)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
