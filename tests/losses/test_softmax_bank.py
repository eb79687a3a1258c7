"""The full softmax over a memory bank against a NumPy softmax over all N rows."""

import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.losses.softmax_bank import full_softmax_bank_loss

B, N, D, TAU = 5, 37, 8, 0.1


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return (
        _unit(rng.normal(size=(B, D))),
        _unit(rng.normal(size=(N, D))),
        rng.choice(N, B, replace=False),
    )


def _numpy_loss_and_grad(f, bank, ids):
    """-mean_b log softmax(bank f_b / tau)[ids_b] and its gradient in f."""
    logits = f @ bank.T / TAU
    m = logits.max(1, keepdims=True)
    p = np.exp(logits - m)
    p /= p.sum(1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(B), ids]))
    grad = (p @ bank - bank[ids]) / TAU / B
    return loss, grad


@pytest.mark.parametrize("chunk", [N, 7, 1, 1000])
def test_loss_and_gradient_match_numpy_for_any_chunk(chunk):
    f, bank, ids = _inputs()
    expected, expected_grad = _numpy_loss_and_grad(f, bank, ids)
    feats = tf.Variable(f.astype(np.float32))
    with tf.GradientTape() as tape:
        loss = full_softmax_bank_loss(feats, tf.constant(bank, tf.float32), ids, TAU, chunk)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(
        tape.gradient(loss, feats).numpy(), expected_grad, rtol=1e-4, atol=1e-6
    )


def test_the_own_row_is_one_of_the_n_classes():
    # A bank of N copies of f: every row scores alike, so the loss is log N exactly
    # (the own row counted once, not added again as a separate positive).
    f, _, ids = _inputs(seed=1)
    bank = np.repeat(f[:1], N, axis=0)
    loss = full_softmax_bank_loss(
        tf.constant(f[:1], tf.float32), tf.constant(bank, tf.float32), ids[:1], TAU, chunk=10
    )
    np.testing.assert_allclose(float(loss), np.log(N), rtol=1e-6)
