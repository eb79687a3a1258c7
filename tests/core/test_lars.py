"""LARS against a NumPy transcription of its update rule, through a checkpoint and two replicas."""

import keras
import numpy as np
import tensorflow as tf

from tf_contrastive.core.config import base_config
from tf_contrastive.core.lars import LARS
from tf_contrastive.core.schedules import build_optimizer

LR, MOMENTUM, WD, ETA = 0.5, 0.9, 0.01, 0.02


def _model():
    """Dense + batch norm (kernel, bias, gamma, beta) and a second Dense with a zero kernel."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="fc")(inputs)
    x = keras.layers.BatchNormalization(name="fc_bn")(x)
    x = keras.layers.Dense(2, name="zero", kernel_initializer="zeros", use_bias=False)(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(0)
    for v in model.trainable_variables:
        if v.path != "zero/kernel":
            v.assign(rng.normal(size=v.shape).astype(np.float32))
    return model


def _grads(step):
    rng = np.random.default_rng(10 + step)
    shapes = [(4, 3), (3,), (3,), (3,), (3, 2)]
    return [rng.normal(size=s).astype(np.float32) for s in shapes]


def _numpy_lars(weights, grads_per_step, adapted):
    w = [x.astype(np.float64) for x in weights]
    v = [np.zeros_like(x) for x in w]
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            g, lr = g.astype(np.float64), LR
            if adapted[i]:
                g = g + WD * w[i]
                wn, gn = np.linalg.norm(w[i]), np.linalg.norm(g)
                lr = LR * (ETA * wn / gn if wn > 0 and gn > 0 else 1.0)
            v[i] = MOMENTUM * v[i] + lr * g
            w[i] = w[i] - v[i]
    return w


def _lars():
    return LARS(LR, momentum=MOMENTUM, weight_decay=WD, eta=ETA)


def test_one_and_two_steps_match_numpy_with_bias_and_batch_norm_excluded():
    model = _model()
    variables = model.trainable_variables
    assert [v.path for v in variables] == [
        "fc/kernel",
        "fc/bias",
        "fc_bn/gamma",
        "fc_bn/beta",
        "zero/kernel",
    ]
    opt = _lars()
    opt.build(variables)
    assert [not opt.excluded(v) for v in variables] == [True, False, False, False, True]
    start = [v.numpy() for v in variables]
    adapted = [True, False, False, False, True]
    for steps in (1, 2):
        opt.apply([tf.constant(g) for g in _grads(steps - 1)], variables)
        want = _numpy_lars(start, [_grads(s) for s in range(steps)], adapted)
        for v, w in zip(variables, want, strict=True):
            np.testing.assert_allclose(v.numpy(), w, rtol=2e-5, atol=1e-7, err_msg=v.path)
    # Not plain momentum SGD on the adapted kernel: the trust ratio changed its step.
    plain = _numpy_lars(start, [_grads(0), _grads(1)], [False] * 5)
    assert np.abs(variables[0].numpy() - plain[0]).max() > 0.1


def test_momentum_slots_survive_a_checkpoint_and_the_config_round_trips(tmp_path):
    model, opt = _model(), _lars()
    opt.apply([tf.constant(g) for g in _grads(0)], model.trainable_variables)
    path = tf.train.Checkpoint(model=model, optimizer=opt).save(str(tmp_path / "ckpt"))
    opt.apply([tf.constant(g) for g in _grads(1)], model.trainable_variables)

    again = LARS.from_config(opt.get_config())
    assert (again.momentum, again.decay, again.eta, again.exclude) == (
        MOMENTUM,
        WD,
        ETA,
        opt.exclude,
    )
    restored = _model()
    again.build(restored.trainable_variables)
    tf.train.Checkpoint(model=restored, optimizer=again).restore(path).assert_consumed()
    again.apply([tf.constant(g) for g in _grads(1)], restored.trainable_variables)
    for a, b in zip(restored.trainable_variables, model.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_two_replicas_update_like_one_device(mirrored):
    single = _model()
    opt = _lars()
    opt.apply([tf.constant(g) for g in _grads(0)], single.trainable_variables)
    with mirrored.scope():
        double, opt2 = _model(), _lars()
        opt2.build(double.trainable_variables)

    def step():  # each replica holds half the gradient; Keras sums them across replicas
        grads = [tf.constant(g / 2) for g in _grads(0)]
        opt2.apply(grads, double.trainable_variables)

    tf.function(lambda: mirrored.run(step))()
    for a, b in zip(double.trainable_variables, single.trainable_variables, strict=True):
        copies = [t.numpy() for t in a.value.values]
        np.testing.assert_array_equal(copies[0], copies[1])
        np.testing.assert_allclose(copies[0], b.numpy(), rtol=1e-6, atol=1e-7)


def test_built_from_the_config():
    cfg = base_config()
    cfg.optimizer.name, cfg.optimizer.lars_eta, cfg.optimizer.weight_decay = "lars", 0.003, 1e-6
    opt = build_optimizer(cfg.optimizer, 512, 10, 2)
    assert isinstance(opt, LARS) and (opt.eta, opt.decay, opt.momentum) == (0.003, 1e-6, 0.9)
    assert opt.weight_decay is None  # no decoupled decay on top of LARS's own
