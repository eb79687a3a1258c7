"""InvaSpread's batch softmax loss (Ye, Zhang, Yuen, Chang; CVPR 2019, eq. 2-6).

A batch of B instances gives 2B features: f_a for a < B from the first
augmentation, f_{a+B} from the second, pair(a) = (a + B) mod 2B. With
tau the temperature and the similarities of row a against every other row,

    p_ab = exp(f_a^T f_b / tau),     D_a = sum_{b != a} p_ab,
    P_a  = p_{a,pair(a)} / D_a,

the loss is

    J = -(1/2B) sum_a [ log P_a + sum_{b != a, pair(a)} log(1 - p_ab / D_a) ].

This is the reference implementation (``BatchCriterion`` with negM = 1 in
mangye16/Unsupervised_Embedding_Learning), which differs from the paper's
notation in two ways that we follow: both augmentations of every instance act
as anchors (the sum runs over 2B rows and is normalised by 2B), and only the
anchor f_a carries gradient: the other operand of every inner product (the
positive and all the columns) is treated as a constant.

Under a distribution strategy the columns are the features of the whole global
batch gathered from all replicas (constants, so no gradient has to cross
replicas); each replica sums over its own anchors and divides by 2B_global,
which makes the summed loss equal to the single-device loss.
"""

from __future__ import annotations

import tensorflow as tf


def invaspread_loss(anchors: tf.Tensor, columns: tf.Tensor, self_index: tf.Tensor,
                    pair_index: tf.Tensor, temperature: float,
                    normaliser: tf.Tensor | int | None = None) -> tf.Tensor:
    """Sum over ``anchors`` of J's terms, divided by ``normaliser`` (default 2B = rows).

    Args:
      anchors: [M, D] L2-normalised features that receive gradient.
      columns: [N, D] every feature of the (global) batch, anchors included.
      self_index: [M] column of each anchor itself (excluded from D_a).
      pair_index: [M] column of each anchor's other augmentation (the positive).
      temperature: tau.
      normaliser: the 2B_global to divide by; the anchors' count if None.
    """
    columns = tf.stop_gradient(columns)
    logits = tf.matmul(anchors, columns, transpose_b=True) / temperature  # [M, N]
    n = tf.shape(columns)[0]
    is_self = tf.one_hot(self_index, n, on_value=True, off_value=False)
    is_pair = tf.one_hot(pair_index, n, on_value=True, off_value=False)
    masked = tf.where(is_self, tf.constant(-float("inf"), logits.dtype), logits)
    log_d = tf.reduce_logsumexp(masked, axis=1, keepdims=True)  # log D_a
    log_p = masked - log_d  # log(p_ab / D_a); -inf on the diagonal
    pos_term = tf.reduce_sum(tf.where(is_pair, log_p, 0.0), axis=1)
    neg_mask = tf.logical_not(tf.logical_or(is_self, is_pair))
    # log(1 - q) for q = p_ab / D_a in (0, 1); log1p(-exp(log q)) keeps small q exact.
    safe = tf.where(neg_mask, log_p, tf.zeros_like(log_p) - 1.0)
    neg_term = tf.reduce_sum(tf.where(neg_mask, tf.math.log1p(-tf.exp(safe)), 0.0), axis=1)
    if normaliser is None:
        normaliser = tf.shape(anchors)[0]
    return -tf.reduce_sum(pos_term + neg_term) / tf.cast(normaliser, anchors.dtype)
