"""Sampled softmax over a memory bank: the "softmax" variant of InstDisc and CMC.

For a feature f with positive bank row v_pos and K sampled rows v_k,

    loss = -log( exp(v_pos^T f / tau) / (exp(v_pos^T f / tau) + sum_k exp(v_k^T f / tau)) ),

averaged over the batch: cross-entropy with the positive at index 0.
"""

from __future__ import annotations

import tensorflow as tf


def softmax_bank_loss(pos_logits: tf.Tensor, neg_logits: tf.Tensor) -> tf.Tensor:
    """Batch mean of the cross-entropy; logits are already divided by tau."""
    logits = tf.concat([pos_logits[:, None], neg_logits], axis=1)
    return tf.reduce_mean(tf.reduce_logsumexp(logits, axis=1) - pos_logits)
