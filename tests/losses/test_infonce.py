"""InfoNCE (CPC) against a plain NumPy re-derivation with loops over k, b, t."""

import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.losses.infonce import cpc_loss, info_nce, predict_along_rows


def _reference_cpc(z, c, w, negatives):
    """-sum_k mean_{b,t} log softmax over the allowed candidates, by explicit loops."""
    b, t, _ = z.shape
    total, accs = 0.0, []
    for k in range(1, w.shape[0] + 1):
        losses, hits = [], []
        for i in range(b):
            for s in range(t - k):
                pred = w[k - 1].T @ c[i, s]
                cands, pos = [], None
                for j in range(b):
                    for u in range(t):
                        is_pos = j == i and u == s + k
                        if not is_pos:
                            if negatives == "same_sequence" and j != i:
                                continue
                            if negatives == "other_sequences" and j == i:
                                continue
                        if is_pos:
                            pos = len(cands)
                        cands.append(z[j, u] @ pred)
                scores = np.array(cands, np.float64)
                m = scores.max()
                log_den = m + np.log(np.exp(scores - m).sum())
                losses.append(log_den - scores[pos])
                hits.append(float(np.argmax(scores) == pos))
        total += np.mean(losses)
        accs.append(np.mean(hits))
    return total, np.array(accs)


@pytest.mark.parametrize("negatives", ["all", "same_sequence", "other_sequences"])
def test_cpc_loss_matches_numpy(negatives):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 7, 5)).astype(np.float32)
    c = rng.normal(size=(3, 7, 4)).astype(np.float32)
    w = rng.normal(size=(3, 4, 5)).astype(np.float32) * 0.5
    loss, acc = cpc_loss(tf.constant(z), tf.constant(c), tf.constant(w), negatives)
    ref_loss, ref_acc = _reference_cpc(z, c, w, negatives)
    np.testing.assert_allclose(loss.numpy(), ref_loss, rtol=1e-5)
    np.testing.assert_allclose(acc.numpy(), ref_acc, atol=1e-6)


def test_accuracy_is_one_when_predictions_are_the_targets():
    # With c_t = z_{t+1} and W_1 = 50 I, the positive always scores highest.
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2, 6, 4)).astype(np.float32)
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    c = np.concatenate([z[:, 1:], z[:, :1]], axis=1)
    w = (50 * np.eye(4, dtype=np.float32))[None]
    loss, acc = cpc_loss(tf.constant(z), tf.constant(c), tf.constant(w))
    assert acc.numpy()[0] == 1.0
    assert loss.numpy() < 0.1


def test_info_nce_always_allows_the_positive():
    preds = tf.constant([[1.0, 0.0]])
    cands = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    allowed = tf.constant([[False, True]])  # positive masked out by the caller
    loss, correct = info_nce(preds, cands, tf.constant([0]), allowed)
    np.testing.assert_allclose(loss.numpy(), [np.log(np.e + 1) - 1], rtol=1e-6)
    assert correct.numpy()[0] == 1.0


def test_rows_predict_rows_below_in_the_same_column():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(2, 4, 3, 5)).astype(np.float32)  # [B, rows, cols, D]
    c = rng.normal(size=(2, 4, 3, 6)).astype(np.float32)
    w = rng.normal(size=(2, 6, 5)).astype(np.float32) * 0.3
    loss, acc = predict_along_rows(tf.constant(z), tf.constant(c), tf.constant(w))
    cols = lambda x: x.transpose(0, 2, 1, 3).reshape(6, 4, -1)  # noqa: E731
    ref_loss, ref_acc = _reference_cpc(cols(z), cols(c), w, "all")
    np.testing.assert_allclose(loss.numpy(), ref_loss, rtol=1e-5)
    np.testing.assert_allclose(acc.numpy(), ref_acc, atol=1e-6)
