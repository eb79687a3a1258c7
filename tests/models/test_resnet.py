"""models/resnet.py: the fused batch norm trains like Keras's own."""

import numpy as np
import tensorflow as tf
from keras import layers

from tf_contrastive.models.resnet import FusedBatchNormalization


def test_fused_batch_norm_matches_keras_forward_backward_and_moving_stats():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(3.0, 2.0, (8, 5, 5, 6)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(8, 5, 5, 6)).astype(np.float32))
    gamma = rng.uniform(0.5, 1.5, 6).astype(np.float32)
    beta = np.linspace(-1, 1, 6).astype(np.float32)
    outs = []
    for kind in (layers.BatchNormalization, FusedBatchNormalization):
        bn = kind(momentum=0.9, epsilon=1e-5)
        bn.build(x.shape)
        bn.gamma.assign(gamma)
        bn.beta.assign(beta)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = bn(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [x, bn.gamma, bn.beta])
        outs.append([y, *grads, bn.moving_mean, bn.moving_variance, bn(x, training=False)])
    for a, b in zip(*outs, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-5)
    # NumPy: the biased batch variance enters the moving average (momentum 0.9, from 1).
    var = np.var(x.numpy(), axis=(0, 1, 2))
    np.testing.assert_allclose(outs[1][5].numpy(), 0.9 + 0.1 * var, rtol=1e-5)


def test_frozen_layer_uses_its_moving_statistics():
    bn = FusedBatchNormalization()
    x = tf.random.normal((4, 3, 3, 2), 5.0)
    bn.build(x.shape)
    bn.trainable = False
    np.testing.assert_allclose(bn(x, training=True), bn(x, training=False))
