"""InvaSpread's train_step: loss against NumPy on the first step, and it learns."""

import keras
import numpy as np
import tensorflow as tf

from tests.helpers import invaspread_reference as _reference
from tf_contrastive.methods.invaspread import InvaSpread
from tf_contrastive.models.encoder import build_encoder

B = 6


def _model(lr=0.0):
    keras.utils.set_random_seed(0)
    enc = build_encoder((8, 8, 1), "resnet18_cifar", 2, 8, [0.5], [0.25])
    model = InvaSpread(enc, temperature=0.1)
    model.compile(optimizer=keras.optimizers.SGD(lr))
    return model


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((B, 8, 8, 1)).astype(np.float32)
    return {"view_0": tf.constant(x), "view_1": tf.constant(np.flip(x, axis=2).copy())}


def test_first_step_loss_matches_reference():
    model = _model()
    data = _batch()
    feats = model.encoder(tf.concat([data["view_0"], data["view_1"]], 0), training=True)
    expected = _reference(feats.numpy().astype(np.float64))
    logs = model.train_step(data)
    np.testing.assert_allclose(float(logs["loss"]), expected, rtol=1e-4)


def test_training_pulls_views_together():
    model = _model(lr=0.3)
    data = _batch()
    first = model.train_step(data)
    start_pos = float(first["pos_sim"])
    for _ in range(20):
        model.train_step(data)
    for m in model.metrics:
        m.reset_state()
    last = model.train_step(data)
    assert float(last["loss"]) < float(first["loss"])
    assert float(last["pos_sim"]) > start_pos
