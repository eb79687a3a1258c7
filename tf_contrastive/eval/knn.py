"""Weighted k-nearest-neighbour classification on L2-normalised features.

Wu et al.'s protocol: for a query q, take the k training features v_i with the
highest cosine similarity s_i = q^T v_i; class c scores sum_{i in top k,
y_i = c} exp(s_i / sigma); the prediction is the highest-scoring class.

The bank is scanned in chunks with a running top-k, so the memory used is
O(queries x (k + chunk)), whatever the number of training rows (1.28M for ImageNet).
Rows labelled -1 (never seen) are ignored.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


@tf.function(reduce_retracing=True)
def _topk_over_bank(query, bank, bank_labels, k, chunk):
    n = tf.shape(bank)[0]
    q = tf.shape(query)[0]
    best_s = tf.fill([q, k], tf.constant(-np.inf, tf.float32))
    best_y = tf.fill([q, k], tf.constant(-1, tf.int32))
    for start in tf.range(0, n, chunk):
        rows = bank[start:start + chunk]
        ys = bank_labels[start:start + chunk]
        sims = tf.matmul(query, rows, transpose_b=True)
        sims = tf.where(ys[None, :] >= 0, sims, -np.inf)
        kk = tf.minimum(k, tf.shape(rows)[0])
        s, i = tf.math.top_k(sims, k=kk)
        cand_s = tf.concat([best_s, s], axis=1)
        cand_y = tf.concat([best_y, tf.gather(ys, i)], axis=1)
        best_s, top = tf.math.top_k(cand_s, k=k)
        best_y = tf.gather(cand_y, top, batch_dims=1)
    return best_s, best_y


def knn_class_scores(query: tf.Tensor, bank: tf.Tensor, bank_labels: tf.Tensor,
                     num_classes: int, k: int = 200, sigma: float = 0.07,
                     chunk: int = 65536) -> tf.Tensor:
    """[Q, num_classes] weighted votes of each query's k nearest bank rows."""
    k = int(min(k, int(bank.shape[0])))
    sims, labels = _topk_over_bank(tf.cast(query, tf.float32), tf.cast(bank, tf.float32),
                                   tf.cast(bank_labels, tf.int32), tf.constant(k),
                                   tf.constant(int(chunk)))
    weights = tf.where(labels >= 0, tf.exp(sims / sigma), 0.0)
    onehot = tf.one_hot(tf.maximum(labels, 0), num_classes)
    return tf.reduce_sum(onehot * weights[..., None], axis=1)


def knn_accuracy(query_feats, query_labels, bank, bank_labels, num_classes: int,
                 k: int = 200, sigma: float = 0.07, query_chunk: int = 1024,
                 bank_chunk: int = 65536) -> dict[str, float]:
    """Top-1 and top-5 weighted-kNN accuracy (fractions) of labelled queries."""
    query_feats = np.asarray(query_feats, np.float32)
    query_labels = np.asarray(query_labels)
    bank = tf.convert_to_tensor(bank, tf.float32)
    bank_labels = tf.convert_to_tensor(bank_labels, tf.int32)
    # A label outside the classes would vote for nothing (one_hot gives zeros).
    top = max(int(tf.reduce_max(bank_labels)), int(np.max(query_labels, initial=-1)))
    if top >= num_classes:
        raise ValueError(f"kNN: label {top} is outside the {num_classes} classes")
    top1 = top5 = 0
    for start in range(0, len(query_feats), query_chunk):
        scores = knn_class_scores(query_feats[start:start + query_chunk], bank, bank_labels,
                                  num_classes, k, sigma, bank_chunk).numpy()
        y = query_labels[start:start + query_chunk]
        order = np.argsort(-scores, axis=1, kind="stable")
        top1 += int(np.sum(order[:, 0] == y))
        top5 += int(np.sum(np.any(order[:, :5] == y[:, None], axis=1)))
    n = max(len(query_feats), 1)
    return {"knn_top1": top1 / n, "knn_top5": top5 / n}
