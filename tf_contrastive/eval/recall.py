"""Recall@K retrieval on unseen categories (InvaSpread's second protocol).

Each test image queries all other test images by cosine similarity; Recall@K
is the fraction of queries with at least one same-class image among their K
nearest neighbours (the query itself excluded). Following Ye et al., the
embedding is trained on one half of the classes and tested on the other half.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def recall_at_k(feats, labels, ks=(1, 2, 4, 8), chunk: int = 1024) -> dict[str, float]:
    """{'recall@K': fraction} for each K, chunked over queries."""
    feats = tf.math.l2_normalize(tf.convert_to_tensor(feats, tf.float32), axis=1)
    labels = np.asarray(labels)
    n = int(feats.shape[0])
    kmax = min(max(ks), n - 1)
    hits = {k: 0 for k in ks}
    for start in range(0, n, chunk):
        q = feats[start:start + chunk]
        sims = tf.matmul(q, feats, transpose_b=True)
        rows = tf.range(tf.shape(q)[0])
        self_cols = tf.stack([rows, rows + start], axis=1)
        sims = tf.tensor_scatter_nd_update(sims, self_cols,
                                           tf.fill([tf.shape(q)[0]], -np.inf))
        _, idx = tf.math.top_k(sims, k=kmax)
        same = labels[idx.numpy()] == labels[start:start + chunk, None]
        for k in ks:
            hits[k] += int(np.sum(np.any(same[:, :k], axis=1)))
    return {f"recall@{k}": hits[k] / n for k in ks}
