"""MoCo: logits, loss and gradient against NumPy; the queue, the key encoder's momentum
update and the config rules after real train steps on a tiny encoder."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.core import fingerprint
from tf_contrastive.core.config import ConfigError, base_config
from tf_contrastive.losses.softmax_bank import softmax_bank_loss
from tf_contrastive.methods import MoCo, validate
from tf_contrastive.methods.moco import SPEC, moco_logits
from tf_contrastive.models.encoder import build_encoder

B, K, D, TAU, M = 6, 10, 8, 0.2, 0.9


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_logits_loss_and_query_gradient_match_numpy():
    rng = np.random.default_rng(0)
    q, k = _unit(rng.normal(size=(B, D))), _unit(rng.normal(size=(B, D)))
    queue = _unit(rng.normal(size=(K, D)))
    # NumPy: logits [B, 1 + K] with the positive first, cross-entropy with label 0.
    logits = np.concatenate([(q * k).sum(1, keepdims=True), q @ queue.T], axis=1) / TAU
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[:, 0]).mean()
    onehot = np.eye(1 + K)[np.zeros(B, int)]
    candidates = np.stack([np.concatenate([k[i : i + 1], queue]) for i in range(B)])  # [B,1+K,D]
    grad = np.einsum("bc,bcd->bd", p - onehot, candidates) / TAU / B

    qt = tf.constant(q, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(qt)
        pos, neg = moco_logits(qt, tf.constant(k, tf.float32), tf.constant(queue, tf.float32), TAU)
        got = softmax_bank_loss(pos, neg)
    np.testing.assert_allclose(pos.numpy(), logits[:, 0], rtol=1e-5)
    np.testing.assert_allclose(neg.numpy(), logits[:, 1:], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(got), loss, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(got, qt).numpy(), grad, rtol=1e-4, atol=1e-6)


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    enc = build_encoder((8, 8, 1), "resnet18_cifar", 2, D, [0.5], [0.25], head="mlp", head_hidden=4)
    model = MoCo(enc, queue_size=K, momentum=M, temperature=TAU)  # the key encoder: a clone
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def _batch(seed):
    rng = np.random.default_rng(seed)
    x = rng.random((B, 8, 8, 1)).astype(np.float32)
    return {"view_0": tf.constant(x), "view_1": tf.constant(np.flip(x, 2).copy())}


def test_two_steps_update_the_key_encoder_by_momentum_and_fill_the_queue_with_a_wrap():
    model = _model()
    trainable = {id(v) for v in model.trainable_variables}
    assert not any(id(v) in trainable for v in model.key_encoder.weights)  # no optimizer
    pairs = [
        (q, k)
        for q, k in zip(model.encoder.weights, model.key_encoder.weights, strict=True)
        if q.trainable
    ]
    for q, k in pairs:  # a copy at the start
        np.testing.assert_array_equal(q.numpy(), k.numpy())
    queue0 = model.queue.keys.numpy().copy()
    rows, pointer = queue0.copy(), 0
    for seed in (1, 2):  # B=6 keys into K=10 rows: the second step writes 6..9, then 0, 1
        data = _batch(seed)
        before = [(q.numpy().copy(), k.numpy().copy()) for q, k in pairs]
        keys = model.key_encoder(data["view_1"], training=True).numpy()
        q = model.encoder(data["view_0"], training=True).numpy()
        logits = np.concatenate([(q * keys).sum(1, keepdims=True), q @ rows.T], 1) / TAU
        expected_loss = np.mean(np.log(np.exp(logits).sum(1)) - logits[:, 0])
        for m in model.metrics:
            m.reset_state()
        logs = model.train_step(data)
        np.testing.assert_allclose(float(logs["loss"]), expected_loss, rtol=1e-5)
        for key in keys:
            rows[pointer], pointer = key, (pointer + 1) % K
        np.testing.assert_allclose(model.queue.keys.numpy(), rows, atol=1e-6)
        assert int(model.queue.pointer.numpy()) == pointer
        for (q_var, k_var), (_, k_old) in zip(pairs, before, strict=True):
            np.testing.assert_allclose(
                k_var.numpy(), M * k_old + (1 - M) * q_var.numpy(), rtol=1e-5, atol=1e-7
            )
    assert pointer == 2
    moved = [not np.array_equal(q.numpy(), k.numpy()) for q, k in pairs]
    assert all(moved)  # the key encoder trails the trained query encoder


def _state(model):
    """Every variable of the model and its optimizer, in order."""
    return [v.numpy() for v in [*model.weights, *model.optimizer.variables]]


def test_a_restored_checkpoint_holds_queue_pointer_and_key_encoder_and_continues_identically(
    tmp_path,
):
    trained = _model()
    for seed in (1, 2):
        trained.train_step(_batch(seed))
    prefix = tf.train.Checkpoint(model=trained, optimizer=trained.optimizer).write(
        str(tmp_path / "ckpt")
    )
    restored = _model(seed=7)  # other initial weights and queue rows
    restored.optimizer.build(restored.trainable_variables)
    tf.train.Checkpoint(model=restored, optimizer=restored.optimizer).read(prefix).assert_consumed()
    assert int(restored.queue.pointer.numpy()) == 2
    np.testing.assert_array_equal(restored.queue.keys.numpy(), trained.queue.keys.numpy())
    for a, b in zip(trained.key_encoder.weights, restored.key_encoder.weights, strict=True):
        np.testing.assert_array_equal(b.numpy(), a.numpy(), err_msg=a.path)
    for model in (trained, restored):
        model.train_step(_batch(3))
    want, got = _state(trained), _state(restored)
    assert len(got) == len(want)
    differ = [i for i, (a, b) in enumerate(zip(want, got, strict=True)) if not np.array_equal(a, b)]
    assert not differ, differ


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("moco.queue_size", 0, "config.moco.queue_size: must be >= 1, got 0"),
        ("moco.temperature", 0.0, "config.moco.temperature: must be > 0, got 0.0"),
        ("moco.momentum", 1.0, r"config.moco.momentum: must be in \[0, 1\), got 1.0"),
        ("moco.momentum", -0.5, "config.moco.momentum"),
    ],
)
def test_bad_moco_values_name_their_key_whichever_method_runs(key, value, match):
    cfg = base_config()  # method instdisc: the moco section is checked too
    cfg.moco[key.split(".")[1]] = value
    with pytest.raises(ConfigError, match=match):
        validate(cfg)


def test_a_queue_smaller_than_the_batch_and_a_resized_queue_on_resume_are_refused():
    cfg = base_config()
    cfg.method, cfg.moco.queue_size = "moco", 128
    with pytest.raises(
        ConfigError,
        match=r"config.moco.queue_size: 128 rows cannot take a "
        r"step's 256 keys \(config.train.batch_size\)",
    ):
        validate(cfg)
    old = fingerprint.build(cfg, {})
    cfg.moco.queue_size = 4096
    new = fingerprint.build(cfg, {})
    with pytest.raises(
        fingerprint.ResumeMismatch,
        match=r"moco.queue_size: 128 -> 4096  "
        r"\(REFUSED: the checkpoint's key queue",
    ):
        fingerprint.check(
            "/run/checkpoints", old, new, allowed=("moco.queue_size",), method_refusal=SPEC.refusal
        )
    cfg.moco.temperature = 0.2  # another moco key: allowed when listed
    assert fingerprint.check(
        "/run",
        new,
        fingerprint.build(cfg, {}),
        allowed=("moco.temperature",),
        method_refusal=SPEC.refusal,
    )
