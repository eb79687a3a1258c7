"""Noise-contrastive estimation over a memory bank (Wu et al., CVPR 2018, eq. 3-7).

With v_i the bank row of instance i, f a feature and tau the temperature,

    P(i | f) = exp(v_i^T f / tau) / Z,     Z = N * mean_j exp(v_j^T f / tau)

where Z is estimated once, on the first batch, from the scores of the positive
and the K sampled noise rows, then frozen. Noise is uniform, P_n = 1/N, and
h(i, v) = P(i | v) / (P(i | v) + K * P_n). The loss per sample is

    -log h(positive) - sum_{k=1..K} log(1 - h(noise_k)).

Like the reference code (lemniscate.pytorch NCECriterion) we add eps=1e-7 to
each denominator P + K * P_n. It is not negligible in value: each noise term
gains about eps / (K/N), so the loss rises by about N * eps (0.13 for ImageNet)
while its gradient barely moves. ``eps=0`` gives the paper's formula. Terms are
computed in log space (log P = s/tau - log Z) so exp(s/tau) never overflows.
"""

from __future__ import annotations

import tensorflow as tf


def estimate_z(pos_logits: tf.Tensor, neg_logits: tf.Tensor, num_instances: int) -> tf.Tensor:
    """Z = N * mean(exp(s/tau)) over all B x (K+1) scores (logits are s/tau)."""
    all_logits = tf.concat([pos_logits[:, None], neg_logits], axis=1)
    return tf.cast(num_instances, tf.float32) * tf.reduce_mean(tf.exp(all_logits))


def nce_loss(pos_logits: tf.Tensor, neg_logits: tf.Tensor, z: tf.Tensor,
             num_instances: int, eps: float = 1e-7) -> tf.Tensor:
    """Mean over the batch of the NCE loss.

    Args:
      pos_logits: [B] scores s_pos / tau of each sample against its own bank row.
      neg_logits: [B, K] scores against K noise rows (or [B, K] from a shared set).
      z: the normaliser Z (scalar).
      num_instances: N, the size of the bank.
      eps: added to the denominators as in the reference code (0 = the paper).
    """
    k = tf.cast(tf.shape(neg_logits)[1], tf.float32)
    kpn = k / tf.cast(num_instances, tf.float32)
    log_z = tf.math.log(tf.cast(z, tf.float32))
    log_p_pos = pos_logits - log_z
    log_p_neg = neg_logits - log_z
    # -log(P / (P + KPn + eps)) = softplus(log(KPn + eps) - log P).
    pos_term = tf.nn.softplus(tf.math.log(kpn + eps) - log_p_pos)
    # -log(KPn / (P + KPn + eps)) = softplus(log(P / KPn + eps / KPn)); written this
    # way the K small terms keep their precision in float32.
    log_eps_ratio = tf.math.log(eps / kpn) if eps > 0 else tf.constant(-float("inf"))
    log_ratio = tf.reduce_logsumexp(
        tf.stack([log_p_neg - tf.math.log(kpn),
                  tf.broadcast_to(log_eps_ratio, tf.shape(log_p_neg))]), axis=0)
    neg_term = tf.nn.softplus(log_ratio)
    return tf.reduce_mean(pos_term + tf.reduce_sum(neg_term, axis=1))


def next_z(z_current: tf.Tensor, z_estimate: tf.Tensor, z_momentum: float) -> tf.Tensor:
    """The Z to use and store this step: the estimate on the first batch (z < 0),
    then frozen (``z_momentum`` = 0, the paper) or an EMA of the estimates."""
    if z_momentum > 0:
        later = z_momentum * z_current + (1.0 - z_momentum) * z_estimate
    else:
        later = z_current
    return tf.where(z_current < 0, z_estimate, later)
