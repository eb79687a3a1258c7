"""InstDisc's train_step on a tiny encoder: loss, Z, bank writes, noise sampling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.methods.instdisc import InstDisc
from tf_contrastive.models.encoder import build_encoder

N, K, B, TAU = 40, 16, 8, 0.07


def _model(loss="nce", shared=False, z_momentum=0.0, k=K):
    keras.utils.set_random_seed(0)
    enc = build_encoder((8, 8, 1), "resnet18_cifar", 2, 8, [0.5], [0.25])
    model = InstDisc(enc, N, num_negatives=k, temperature=TAU, momentum=0.5, loss=loss,
                     shared_negatives=shared, z_momentum=z_momentum, seed=7)
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # lr 0: the encoder stays fixed
    return model


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    return {"image": tf.constant(rng.random((B, 8, 8, 1)), tf.float32),
            "index": tf.constant(rng.choice(N, B, replace=False), tf.int32),
            "label": tf.constant(rng.integers(0, 3, B), tf.int32)}


def _numpy_nce(f, bank, ids, noise, z=None, eps=1e-7):
    pos = np.sum(f * bank[ids], axis=1) / TAU
    neg = np.einsum("bd,bkd->bk", f, bank[noise]) / TAU
    out = np.exp(np.concatenate([pos[:, None], neg], axis=1))
    if z is None:
        z = out.mean() * N
    p = out / z
    kpn = K / N
    loss = -(np.log(p[:, 0] / (p[:, 0] + kpn + eps)).sum()
             + np.log(kpn / (p[:, 1:] + kpn + eps)).sum()) / len(ids)
    return loss, z


def test_first_step_loss_and_z_match_numpy_and_bank_moves_only_batch_rows():
    model = _model()
    data = _batch()
    bank0 = model.bank.features.numpy().copy()
    feats = model.encoder(data["image"], training=True).numpy()
    noise = model.noise_ids(B, 0).numpy()
    expected, z = _numpy_nce(feats, bank0, data["index"].numpy(), noise)
    logs = model.train_step(data)
    np.testing.assert_allclose(float(logs["loss"]), expected, rtol=1e-4)
    np.testing.assert_allclose(float(model.z.numpy()), z, rtol=1e-4)
    bank1 = model.bank.features.numpy()
    ids = data["index"].numpy()
    blend = 0.5 * bank0[ids] + 0.5 * feats
    np.testing.assert_allclose(bank1[ids], blend / np.linalg.norm(blend, axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-6)
    others = np.setdiff1d(np.arange(N), ids)
    np.testing.assert_array_equal(bank1[others], bank0[others])
    np.testing.assert_array_equal(model.bank.labels.numpy()[ids], data["label"].numpy())


def test_z_is_frozen_after_the_first_batch_unless_ema():
    model = _model()
    assert float(model.z.numpy()) < 0  # not estimated yet
    model.train_step(_batch(0))
    z1 = float(model.z.numpy())
    model.train_step(_batch(1))
    assert float(model.z.numpy()) == z1 > 0
    ema = _model(z_momentum=0.9)
    ema.train_step(_batch(0))
    assert float(ema.z.numpy()) == pytest.approx(z1, rel=1e-6)  # same first estimate
    ema.train_step(_batch(1))
    assert float(ema.z.numpy()) != pytest.approx(z1, rel=1e-6)


def test_noise_ids_are_uniform_in_range_and_change_with_the_step():
    model = _model()
    a, b = model.noise_ids(B, 0).numpy(), model.noise_ids(B, 1).numpy()
    assert a.shape == (B, K) and a.min() >= 0 and a.max() < N
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, model.noise_ids(B, 0).numpy())  # stateless
    many = _model().noise_ids(4096, 3).numpy().ravel()
    counts = np.bincount(many, minlength=N)
    assert counts.min() > 0.8 * many.size / N and counts.max() < 1.2 * many.size / N


def test_shared_negatives_score_one_set_for_the_whole_batch():
    model = _model(loss="softmax", shared=True)
    data = _batch()
    noise = model.noise_ids(B, 0).numpy()
    assert noise.shape == (1, K)
    bank0 = model.bank.features.numpy().copy()
    feats = model.encoder(data["image"], training=True).numpy()
    logits = np.concatenate([np.sum(feats * bank0[data["index"].numpy()], 1)[:, None],
                             feats @ bank0[noise[0]].T], axis=1) / TAU
    m = logits.max(1, keepdims=True)
    expected = np.mean(np.log(np.exp(logits - m).sum(1)) + m[:, 0] - logits[:, 0])
    logs = model.train_step(data)
    np.testing.assert_allclose(float(logs["loss"]), expected, rtol=1e-4)


@pytest.mark.parametrize("k", [K, 0])  # K sampled rows, or the softmax over all N
def test_training_lowers_the_loss_on_a_fixed_batch(k):
    model = _model(loss="softmax", k=k)
    model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9))
    data = _batch()
    first = float(model.train_step(data)["loss"])
    for _ in range(15):
        model.train_step(data)
    model.loss_tracker.reset_state()  # the tracker is a running mean
    assert float(model.train_step(data)["loss"]) < first


def test_full_bank_softmax_scores_every_row_with_the_own_row_as_label():
    model = _model(loss="softmax", k=0)
    model.objective.chunk = 16  # three chunks of 16, 16 and 8 rows
    data = _batch()
    ids = data["index"].numpy()
    assert model.noise_ids(B, 0) is None
    bank0 = model.bank.features.numpy().copy()
    feats = model.encoder(data["image"], training=True).numpy()
    sims = feats @ bank0.T
    logits = sims / TAU
    m = logits.max(1, keepdims=True)
    expected = np.mean(np.log(np.exp(logits - m).sum(1)) + m[:, 0] - logits[np.arange(B), ids])
    pos = sims[np.arange(B), ids]
    logs = model.train_step(data)
    np.testing.assert_allclose(float(logs["loss"]), expected, rtol=1e-4)
    np.testing.assert_allclose(float(logs["pos_sim"]), pos.mean(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(logs["neg_sim"]), np.mean((sims.sum(1) - pos) / (N - 1)),
                               rtol=1e-4, atol=1e-6)
    blend = 0.5 * bank0[ids] + 0.5 * feats
    np.testing.assert_allclose(model.bank.features.numpy()[ids],
                               blend / np.linalg.norm(blend, axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match=r"config.instdisc.num_negatives: must be >= 1 \(or 0"):
        InstDisc(model.encoder, N, num_negatives=0, loss="nce")
