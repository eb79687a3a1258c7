"""NCE loss, Z estimate and the sampled softmax against NumPy re-derivations of the paper."""

import numpy as np
import tensorflow as tf

from tf_contrastive.losses.nce import estimate_z, nce_loss
from tf_contrastive.losses.softmax_bank import softmax_bank_loss


def _inputs(seed=0, b=6, k=9, d=16, tau=0.07):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(b, d))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    bank = rng.normal(size=(b, k + 1, d))
    bank /= np.linalg.norm(bank, axis=2, keepdims=True)
    sims = np.einsum("bd,bkd->bk", f, bank)  # column 0 is the positive
    return sims / tau


def _reference_nce(logits, n, z=None, eps=1e-7):
    """Wu et al.'s NCEAverage + NCECriterion, written as in the reference code.

    eps=1e-7 as in the reference code; eps=0 is the paper's formula.
    """
    out = np.exp(logits)
    if z is None:
        z = out.mean() * n
    out = out / z
    b, kp1 = out.shape
    k = kp1 - 1
    pn = 1.0 / n
    p_pos = out[:, 0]
    ln_pmt = np.log(p_pos / (p_pos + k * pn + eps))
    p_neg = out[:, 1:]
    ln_pon = np.log((k * pn) / (p_neg + k * pn + eps))
    return -(ln_pmt.sum() + ln_pon.sum()) / b, z


def test_z_is_n_times_mean_exp_over_all_scores():
    logits = _inputs()
    n = 1000
    z = estimate_z(tf.constant(logits[:, 0], tf.float32), tf.constant(logits[:, 1:], tf.float32), n)
    np.testing.assert_allclose(z.numpy(), n * np.exp(logits).mean(), rtol=1e-5)


def test_nce_loss_matches_reference_with_estimated_z():
    logits = _inputs(seed=1)
    n = 5000
    expected, z_ref = _reference_nce(logits, n)
    pos, neg = tf.constant(logits[:, 0], tf.float32), tf.constant(logits[:, 1:], tf.float32)
    z = estimate_z(pos, neg, n)
    np.testing.assert_allclose(nce_loss(pos, neg, z, n).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(z.numpy(), z_ref, rtol=1e-5)


def test_nce_loss_matches_reference_with_frozen_z():
    logits = _inputs(seed=2, b=4, k=32)
    n, z = 100_000, 3.7e6
    expected, _ = _reference_nce(logits, n, z=z)
    got = nce_loss(tf.constant(logits[:, 0], tf.float32), tf.constant(logits[:, 1:], tf.float32),
                   tf.constant(z, tf.float32), n)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_nce_gradient_pushes_positive_up_and_noise_down():
    logits = tf.Variable(_inputs(seed=3).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = nce_loss(logits[:, 0], logits[:, 1:], tf.constant(1e4), 1000)
    g = tape.gradient(loss, logits).numpy()
    assert np.all(g[:, 0] < 0) and np.all(g[:, 1:] > 0)


def test_softmax_bank_loss_matches_cross_entropy():
    logits = _inputs(seed=4)
    m = logits.max(axis=1, keepdims=True)
    log_probs = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    expected = -log_probs[:, 0].mean()
    got = softmax_bank_loss(tf.constant(logits[:, 0], tf.float32),
                            tf.constant(logits[:, 1:], tf.float32))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_imagenet_scale_with_and_without_the_reference_eps():
    logits = _inputs(seed=5, b=4, k=4096, d=32)
    n = 1_281_167
    pos, neg = tf.constant(logits[:, 0], tf.float32), tf.constant(logits[:, 1:], tf.float32)
    for eps in (1e-7, 0.0):
        expected, z = _reference_nce(logits, n, eps=eps)
        got = nce_loss(pos, neg, tf.constant(z, tf.float32), n, eps=eps)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
