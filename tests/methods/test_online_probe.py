"""The online linear probe: trained beside a method without touching it, against NumPy."""

import keras
import numpy as np
import tensorflow as tf

from tf_contrastive.methods.instdisc import InstDisc
from tf_contrastive.models.encoder import backbone_of, build_encoder

N, B = 40, 8


def _model(probe: bool):
    keras.utils.set_random_seed(0)
    enc = build_encoder((8, 8, 1), "resnet18_cifar", 2, 8, [0.5], [0.25])
    model = InstDisc(enc, N, num_negatives=16, loss="softmax", seed=7)
    if probe:
        model.attach_online_probe(3, learning_rate=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9))
    model.optimizer.build(model.trainable_variables)
    return model


def _batch(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, B)
    labels[:2] = -1  # unlabelled rows: masked out of the probe's loss and accuracy
    return {
        "image": tf.constant(rng.random((B, 8, 8, 1)), tf.float32),
        "index": tf.constant(rng.choice(N, B, replace=False), tf.int32),
        "label": tf.constant(labels, tf.int32),
    }


def _method_state(model):
    return [
        v.numpy()
        for v in [
            *model.trainable_variables,
            *model.non_trainable_variables,
            *model.optimizer.variables,
        ]
    ]


def test_probe_learns_beside_the_method_and_never_changes_it():
    plain, probed = _model(False), _model(True)
    probe = probed.online_probe
    probe_vars = {id(v) for v in probe.classifier.weights}
    assert not probe_vars & {id(v) for v in probed.trainable_variables}  # not the method's
    kernel0, bias0 = (v.numpy() for v in probe.classifier.weights)
    data = _batch(0)
    # The probe scores the features of the weights the step starts from.
    # Training mode (batch statistics), as the method's forward sees the batch; on a twin,
    # as a training-mode call updates the moving statistics the probe leaves alone.
    feats = backbone_of(_model(False).encoder)(data["image"], training=True).numpy()
    logs = probed.train_step(data)
    plain.train_step(data)
    logits = feats @ kernel0 + bias0
    logits -= logits.max(1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    y = data["label"].numpy()
    keep = y >= 0
    expected = -np.mean(log_p[keep, y[keep]])
    np.testing.assert_allclose(float(logs["probe_loss"]), expected, rtol=1e-4)
    hits = np.argmax(logits, 1)[keep] == y[keep]
    np.testing.assert_allclose(float(logs["probe_top1"]), hits.mean(), rtol=1e-6)
    for seed in (1, 2):
        probed.train_step(_batch(seed))
        plain.train_step(_batch(seed))
    for a, b in zip(_method_state(plain), _method_state(probed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(probe.optimizer.iterations.numpy()) == 3
    assert not np.allclose(probe.classifier.kernel.numpy(), kernel0)
    out = probe.eval_outputs(data["image"])
    np.testing.assert_allclose(
        out["embeddings"].numpy(), probed.encoder(data["image"], training=False).numpy(), atol=1e-6
    )
    assert out["predictions"].shape == (B,)
