"""InvaSpread's loss against a NumPy transcription of the reference BatchCriterion."""

import numpy as np
import tensorflow as tf

from tests.helpers import invaspread_reference as _reference
from tf_contrastive.losses.invaspread import invaspread_loss

TAU = 0.1


def _feats(b=5, d=12, seed=0):
    x = np.random.default_rng(seed).normal(size=(2 * b, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _indices(b):
    rows = np.arange(2 * b)
    return rows, (rows + b) % (2 * b)


def test_matches_reference_batch_criterion():
    x = _feats()
    self_idx, pair_idx = _indices(5)
    got = invaspread_loss(tf.constant(x, tf.float32), tf.constant(x, tf.float32),
                          tf.constant(self_idx), tf.constant(pair_idx), TAU)
    np.testing.assert_allclose(got.numpy(), _reference(x), rtol=1e-5)


def test_gradient_flows_only_through_the_anchor():
    x = tf.Variable(_feats(b=3, seed=1), dtype=tf.float32)
    self_idx, pair_idx = _indices(3)
    with tf.GradientTape() as tape:
        loss = invaspread_loss(x, x, self_idx, pair_idx, TAU)
    grad = tape.gradient(loss, x).numpy()
    # Reference gradient: columns detached, so d/dx_a only through row a's logits.
    xn = x.numpy()
    eps = 1e-3
    num = np.zeros_like(xn)
    for a in range(xn.shape[0]):
        for d in range(xn.shape[1]):
            up, down = xn.copy(), xn.copy()
            up[a, d] += eps
            down[a, d] -= eps
            # Perturb only the anchor row; the columns stay the unperturbed features.
            f_up = invaspread_loss(tf.constant(up), tf.constant(xn), self_idx, pair_idx, TAU)
            f_dn = invaspread_loss(tf.constant(down), tf.constant(xn), self_idx, pair_idx, TAU)
            num[a, d] = (f_up.numpy() - f_dn.numpy()) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=2e-2, atol=2e-3)


def test_two_replicas_sum_to_the_single_device_loss(mirrored):
    b_global, n_rep = 8, 2
    b = b_global // n_rep
    x = _feats(b=b_global, seed=2).astype(np.float32)  # single device: [v0 (8); v1 (8)]
    self_idx, pair_idx = _indices(b_global)
    single = invaspread_loss(x, x, self_idx, pair_idx, TAU).numpy()
    strategy = mirrored

    def local(ctx):  # replica r holds instances r*b..(r+1)*b-1, both views
        r = ctx.replica_id_in_sync_group
        return np.concatenate([x[r * b:(r + 1) * b], x[b_global + r * b: b_global + (r + 1) * b]])

    values = strategy.experimental_distribute_values_from_function(local)

    @tf.function
    def step(v):
        def fn(anchors):
            ctx = tf.distribute.get_replica_context()
            cols = ctx.all_gather(anchors, axis=0)  # [r0: v0, v1; r1: v0, v1]
            offset = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * 2 * b
            rows = tf.range(2 * b)
            return invaspread_loss(anchors, cols, rows + offset, (rows + b) % (2 * b) + offset,
                                   TAU, normaliser=2 * b_global)
        per = strategy.run(fn, args=(v,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per, axis=None)

    np.testing.assert_allclose(step(values).numpy(), single, rtol=1e-5)
