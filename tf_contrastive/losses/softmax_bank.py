"""Softmax over a memory bank: the "softmax" variant of InstDisc and CMC.

Sampled: for a feature f with positive bank row v_pos and K sampled rows v_k,

    loss = -log( exp(v_pos^T f / tau) / (exp(v_pos^T f / tau) + sum_k exp(v_k^T f / tau)) ),

averaged over the batch: cross-entropy with the positive at index 0.

Full (the non-parametric softmax of Wu et al. 2018, eq. 2; lemniscate.pytorch's
``--nce-k 0``: ``LinearAverage`` + cross-entropy): every one of the N rows is a class,
the instance's own row among them,

    loss = -log( exp(v_i^T f / tau) / sum_{j=1..N} exp(v_j^T f / tau) ).

The N logits are computed in chunks of rows and never all kept: the forward pass keeps a
running log-sum-exp per sample, the backward pass recomputes each chunk's softmax, so
memory is O(B x chunk) whatever N is, and the chunk size changes the result only by
float rounding.
"""

from __future__ import annotations

import tensorflow as tf

# Bank rows scored per matmul by the full softmax: B x 16384 floats (8 MB at B=128).
FULL_BANK_CHUNK = 16384


def softmax_bank_loss(pos_logits: tf.Tensor, neg_logits: tf.Tensor) -> tf.Tensor:
    """Batch mean of the cross-entropy; logits are already divided by tau."""
    logits = tf.concat([pos_logits[:, None], neg_logits], axis=1)
    return tf.reduce_mean(tf.reduce_logsumexp(logits, axis=1) - pos_logits)


def full_softmax_bank_loss(feats: tf.Tensor, bank: tf.Tensor, ids: tf.Tensor,
                           temperature: float, chunk: int = FULL_BANK_CHUNK) -> tf.Tensor:
    """Batch mean of the cross-entropy over all N bank rows, row ``ids[b]`` the label.

    Args:
      feats: [B, D] features (the gradient flows to them only).
      bank: [N, D] bank rows (N static); treated as a constant.
      ids: [B] each sample's own row.
      temperature: tau.
      chunk: rows per matmul (any value >= 1 gives the same loss and gradient).
    """
    feats = tf.cast(feats, tf.float32)
    bank = tf.stop_gradient(tf.cast(bank, tf.float32))
    n = bank.shape[0]
    if n is None:
        raise ValueError("full_softmax_bank_loss: the bank needs a static number of rows")
    if chunk < 1:
        raise ValueError(f"full_softmax_bank_loss: chunk must be >= 1, got {chunk}")
    blocks = [bank[s:s + chunk] for s in range(0, n, chunk)]
    inv_tau = 1.0 / float(temperature)

    @tf.custom_gradient
    def log_normaliser(f):
        parts = [tf.reduce_logsumexp(tf.matmul(f, rows, transpose_b=True) * inv_tau, axis=1)
                 for rows in blocks]
        lse = tf.reduce_logsumexp(tf.stack(parts, axis=1), axis=1)

        def grad(upstream):
            # d lse / d f = sum_j softmax_j v_j / tau, one chunk of rows at a time.
            expected = tf.add_n([
                tf.matmul(tf.exp(tf.matmul(f, rows, transpose_b=True) * inv_tau
                                 - lse[:, None]), rows) for rows in blocks])
            return upstream[:, None] * expected * inv_tau

        return lse, grad

    pos = tf.reduce_sum(feats * tf.gather(bank, tf.cast(ids, tf.int32)), axis=1) * inv_tau
    return tf.reduce_mean(log_normaliser(feats) - pos)
