"""InfoNCE for contrastive predictive coding (van den Oord, Li, Vinyals 2018).

For a sequence of latents z_t and contexts c_t, step k has its own linear map
W_k and the loss is

    L = - sum_{k=1..K} E_{b,t} [ log( exp(z_{t+k}^T W_k c_t)
                                      / sum_{z_j in X} exp(z_j^T W_k c_t) ) ],

with the expectation over every sequence b of the batch and every t with
t + k < T, and X the positive z_{t+k} plus the negatives. Negatives are the
other latents of the batch, chosen by ``negatives``:

* ``"all"``: every other frame of every sequence (B*T - 1 negatives);
* ``"same_sequence"``: the other frames of the prediction's own sequence;
* ``"other_sequences"``: every frame of the other sequences.

The positive appears exactly once in X; a frame equal in value to it elsewhere
is still a negative (the paper samples negatives; here every candidate of the
chosen set is used, which is exact and cheap at these sizes). Per-step
accuracy is how often the positive has the highest score in X.

CPC v2 on images uses the same function: a patch grid's columns are the
sequences and rows the time axis (``predict_along_rows``).
"""

from __future__ import annotations

import tensorflow as tf

NEGATIVES = ("all", "same_sequence", "other_sequences")


def info_nce(predictions: tf.Tensor, candidates: tf.Tensor, positive: tf.Tensor,
             allowed: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-row InfoNCE: predictions [P, D], candidates [M, D], positive [P] in [0, M).

    ``allowed`` [P, M] (bool) restricts the candidates of each row; the positive
    is always allowed. Returns (loss [P], correct [P] as float32).
    """
    logits = tf.matmul(predictions, candidates, transpose_b=True)
    pos_mask = tf.one_hot(positive, tf.shape(candidates)[0], on_value=True, off_value=False)
    if allowed is not None:
        logits = tf.where(tf.logical_or(allowed, pos_mask), logits,
                          tf.constant(float("-inf"), logits.dtype))
    pos_logit = tf.gather(logits, positive, axis=1, batch_dims=1)
    loss = tf.reduce_logsumexp(logits, axis=1) - pos_logit
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=positive.dtype), positive),
                      tf.float32)
    return loss, correct


def cpc_loss(z: tf.Tensor, c: tf.Tensor, w: tf.Tensor, negatives: str = "all",
             candidates: tf.Tensor | None = None,
             first_sequence: tf.Tensor | int = 0) -> tuple[tf.Tensor, tf.Tensor]:
    """Sum over k of the mean InfoNCE of predicting z[:, t+k] from c[:, t].

    z [B, T, D] latents, c [B, T, C] contexts, w [K, C, D] (W_k maps c_t to
    the prediction of z_{t+k}). ``candidates`` [B', T, D] (default z) are the
    latents scored, for instance the whole global batch gathered from every
    replica, in which this batch's sequences start at ``first_sequence``.
    Returns (loss scalar, accuracy per k [K]), both means over this batch's
    predictions.
    """
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives={negatives!r} is not one of {NEGATIVES}")
    if candidates is None:
        candidates = z
    num_steps = w.shape[0]
    b, t = tf.shape(z)[0], tf.shape(z)[1]
    flat_z = tf.reshape(candidates, [-1, candidates.shape[-1]])
    seq_of = tf.repeat(tf.range(tf.shape(candidates)[0]), t)  # sequence of each candidate
    total = tf.constant(0.0, z.dtype)
    accuracies = []
    for k in range(1, num_steps + 1):
        n = t - k
        pred = tf.einsum("btc,cd->btd", c[:, :n], w[k - 1])
        pred = tf.reshape(pred, [b * n, -1])
        rows_b = tf.repeat(tf.range(b), n) + first_sequence
        rows_t = tf.tile(tf.range(n), [b])
        positive = rows_b * t + rows_t + k
        allowed = None
        if negatives != "all":
            same = tf.equal(rows_b[:, None], seq_of[None, :])
            allowed = same if negatives == "same_sequence" else tf.logical_not(same)
        loss, correct = info_nce(pred, flat_z, positive, allowed)
        total += tf.reduce_mean(loss)
        accuracies.append(tf.reduce_mean(correct))
    return total, tf.stack(accuracies)


def predict_along_rows(z: tf.Tensor, c: tf.Tensor, w: tf.Tensor,
                       candidates: tf.Tensor | None = None,
                       first_image: tf.Tensor | int = 0) -> tuple[tf.Tensor, tf.Tensor]:
    """CPC v2: context at grid row i predicts the patch k rows below, same column.

    z [B, H, W, D], c [B, H, W, C]; each column of each image is a sequence
    along the rows, and every patch of the batch is a candidate ("all"), or
    every patch of ``candidates`` [B', H, W, D] in which this batch's images
    start at ``first_image``.
    """
    def columns(x):
        x = tf.transpose(x, [0, 2, 1, 3])  # [B, W, H, D]
        return tf.reshape(x, [-1, tf.shape(x)[2], x.shape[-1]])

    cands = None if candidates is None else columns(candidates)
    return cpc_loss(columns(z), columns(c), w, "all", cands, first_image * tf.shape(z)[2])
