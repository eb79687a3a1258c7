"""NT-Xent against a plain NumPy re-derivation (logits, loss, gradient), and over two replicas."""

import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.losses.ntxent import ntxent_logits, ntxent_loss, view_columns
from tf_contrastive.methods.base import candidates_of

N, D = 4, 6  # images (2N views), feature width


def _views(seed=0):
    """[2N, D] unnormalised features: rows 0..N-1 view 0, rows N..2N-1 view 1."""
    return np.random.default_rng(seed).normal(size=(2 * N, D))


def _numpy_logits(z, tau):
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    logits = u @ u.T / tau
    np.fill_diagonal(logits, -np.inf)
    return logits


def _numpy_loss(z, tau):
    logits = _numpy_logits(z, tau)
    pair = (np.arange(2 * N) + N) % (2 * N)
    lse = np.log(np.exp(logits).sum(axis=1))
    return np.mean(lse - logits[np.arange(2 * N), pair])


def _tf_loss(z, tau):
    self_index, pair_index = view_columns(N)
    return ntxent_loss(z, z, self_index, pair_index, tau)


@pytest.mark.parametrize("tau", [0.5, 0.1])
def test_logits_loss_and_gradient_match_numpy(tau):
    z = _views()
    x = tf.Variable(z, dtype=tf.float32)
    with tf.GradientTape() as tape:
        loss, logits = _tf_loss(x, tau)
    want = _numpy_logits(z, tau)
    np.testing.assert_array_equal(np.isinf(logits.numpy()), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(logits.numpy()[finite], want[finite], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loss.numpy(), _numpy_loss(z, tau), rtol=1e-5)
    # Central differences of the float64 NumPy loss: every view is anchor and candidate.
    eps, num = 1e-6, np.zeros_like(z)
    for i in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[i] += eps
        down[i] -= eps
        num[i] = (_numpy_loss(up, tau) - _numpy_loss(down, tau)) / (2 * eps)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), num, rtol=1e-3, atol=2e-5)


def test_the_positive_is_the_other_view_and_self_is_excluded():
    self_index, pair_index = view_columns(3, first=6)
    np.testing.assert_array_equal(self_index, [6, 7, 8, 9, 10, 11])
    np.testing.assert_array_equal(pair_index, [9, 10, 11, 6, 7, 8])
    z = tf.constant(_views(), tf.float32)
    logits = ntxent_logits(z, z, view_columns(N)[0], 0.5).numpy()
    assert (
        np.isneginf(np.diag(logits)).all() and np.isfinite(logits[~np.eye(2 * N, dtype=bool)]).all()
    )


def test_two_replicas_give_the_single_device_loss_and_gradients(mirrored):
    z = _views(seed=3).astype(np.float32)
    tau, half = 0.1, N // 2
    v0, v1 = tf.constant(z[:N]), tf.constant(z[N:])

    def step(a, b):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            feats = tf.concat([a, b], 0)
            candidates, first = candidates_of(feats, across_replicas=True)
            candidates = feats if candidates is None else candidates
            self_index, pair_index = view_columns(tf.shape(a)[0], first)
            loss, _ = ntxent_loss(feats, candidates, self_index, pair_index, tau)
            share = loss / tf.distribute.get_strategy().num_replicas_in_sync
        return (loss, *tape.gradient(share, [a, b]))

    loss1, g0, g1 = step(v0, v1)

    def local(ctx):
        r = ctx.replica_id_in_sync_group
        return v0[r * half : (r + 1) * half], v1[r * half : (r + 1) * half]

    @tf.function
    def run(dist):
        return mirrored.run(step, args=dist)

    losses, d0, d1 = run(mirrored.experimental_distribute_values_from_function(local))
    local_losses = [t.numpy() for t in mirrored.experimental_local_results(losses)]
    np.testing.assert_allclose(np.mean(local_losses), loss1.numpy(), rtol=1e-5)
    # Each replica's rows get the gradient of the global mean, their share from every replica.
    for got, want in ((d0, g0), (d1, g1)):
        stacked = np.concatenate([t.numpy() for t in mirrored.experimental_local_results(got)])
        np.testing.assert_allclose(stacked, want.numpy(), rtol=1e-4, atol=1e-6)
