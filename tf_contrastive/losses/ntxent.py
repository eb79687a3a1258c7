"""NT-Xent, SimCLR's normalised temperature-scaled cross entropy (Chen et al., ICML 2020, eq. 1).

A global batch of N images gives 2N views; with u_k the L2-normalised projection of
view k and pair(k) its other view,

    l(k) = -log  exp(u_k . u_pair(k) / tau) / sum_{j != k} exp(u_k . u_j / tau),

    L = (1/2N) sum_k l(k):

each anchor is scored against the other 2N - 1 views (itself excluded), its other
view the positive and the 2(N - 1) views of the other images the negatives.

Unlike InvaSpread's loss (``losses/invaspread.py``) both operands of every similarity
carry gradient. Under a distribution strategy the candidates are the views of the
whole global batch gathered from every replica with a gather that sends their
gradient back (``methods.base.candidates_of``): each replica scores its own anchors,
and the template's one loss-scaling rule (this replica's mean / replicas, gradients
summed) gives the gradient of L over the global batch.

The reference code (google-research/simclr ``objective.py``) reports
``mean(loss_a + loss_b)``, the sum over both views of an image, i.e. 2L; here L is the
paper's mean over all 2N anchors (WORKSPACE.md, "SimCLR", on what the factor changes
under LARS).
"""

from __future__ import annotations

import tensorflow as tf


def view_columns(b: tf.Tensor, first: tf.Tensor | int = 0) -> tuple[tf.Tensor, tf.Tensor]:
    """(self_index, pair_index) [2b] of anchors laid out as [view_0 rows; view_1 rows]
    whose block of candidates starts at column ``first``."""
    rows = tf.range(2 * b)
    return rows + first, (rows + b) % (2 * b) + first


def ntxent_logits(
    anchors: tf.Tensor, candidates: tf.Tensor, self_index: tf.Tensor, temperature: float
) -> tf.Tensor:
    """[M, N] cosine similarities / tau of ``anchors`` [M, D] to ``candidates`` [N, D],
    each anchor's own column (``self_index`` [M]) set to -inf."""
    a = tf.math.l2_normalize(anchors, axis=1)
    c = tf.math.l2_normalize(candidates, axis=1)
    logits = tf.matmul(a, c, transpose_b=True) / temperature
    is_self = tf.one_hot(self_index, tf.shape(c)[0], on_value=True, off_value=False)
    return tf.where(is_self, tf.constant(-float("inf"), logits.dtype), logits)


def ntxent_loss(
    anchors: tf.Tensor,
    candidates: tf.Tensor,
    self_index: tf.Tensor,
    pair_index: tf.Tensor,
    temperature: float,
) -> tuple[tf.Tensor, tf.Tensor]:
    """(mean of l(k) over the ``anchors``, their [M, N] logits).

    Args:
      anchors: [M, D] this replica's views (any norm; normalised here).
      candidates: [N, D] every view of the global batch, anchors included.
      self_index: [M] column of each anchor itself (excluded).
      pair_index: [M] column of each anchor's other view (the positive).
      temperature: tau.
    """
    logits = ntxent_logits(anchors, candidates, self_index, temperature)
    positive = tf.gather(logits, pair_index, axis=1, batch_dims=1)
    return tf.reduce_mean(tf.reduce_logsumexp(logits, axis=1) - positive), logits
