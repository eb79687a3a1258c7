"""CMC: two-view NCE/softmax losses, per-direction Z, bank updates, and N-view objectives
against NumPy re-derivations."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.methods.cmc import CMC, view_pairs
from tf_contrastive.models.encoder import L2Normalize

N, K, B, D, TAU = 30, 12, 5, 6, 0.07


def _view_encoder(name):
    x = keras.Input((4,))
    return keras.Model(x, L2Normalize()(keras.layers.Dense(D)(x)), name=name)


def _model(n_views=2, loss="nce", objective="core", shared=False):
    keras.utils.set_random_seed(0)
    encs = {f"v{i}": _view_encoder(f"enc{i}") for i in range(n_views)}
    m = CMC(encs, encs["v0"], N, num_negatives=K, temperature=TAU, momentum=0.5, loss=loss,
            objective=objective, shared_negatives=shared, seed=3)
    m.compile(optimizer=keras.optimizers.SGD(0.0))
    return m


def _np_nce(f, bank, ids, noise, eps=1e-7):
    """NCE of features f against ``bank`` (first-batch Z), as the reference code."""
    pos = np.sum(f * bank[ids], 1) / TAU
    neg = np.einsum("bd,bkd->bk", f, bank[noise]) / TAU
    out = np.exp(np.concatenate([pos[:, None], neg], 1))
    z = out.mean() * N
    p = out / z
    kpn = K / N
    loss = -(np.log(p[:, 0] / (p[:, 0] + kpn + eps)).sum()
             + np.log(kpn / (p[:, 1:] + kpn + eps)).sum()) / len(ids)
    return loss, z


def _np_softmax(f, bank, ids, noise):
    logits = np.concatenate([np.sum(f * bank[ids], 1)[:, None],
                             np.einsum("bd,bkd->bk", f, bank[noise])], 1) / TAU
    m = logits.max(1, keepdims=True)
    return np.mean(np.log(np.exp(logits - m).sum(1)) + m[:, 0] - logits[:, 0])


def _feats(n_views, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n_views, B, D))
    return (f / np.linalg.norm(f, axis=2, keepdims=True)).astype(np.float32)


def test_pairs():
    assert view_pairs(4, "core") == [(0, 1), (0, 2), (0, 3)]
    assert view_pairs(4, "full") == list(itertools.combinations(range(4), 2))
    with pytest.raises(ValueError, match="config.cmc.objective"):
        view_pairs(3, "star")


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("loss", ["nce", "softmax"])
def test_two_view_train_step_losses_z_and_banks(loss, shared):
    m = _model(loss=loss, shared=shared)
    rng = np.random.default_rng(1)
    x = [rng.normal(size=(B, 4)).astype(np.float32) for _ in range(2)]
    ids = np.array([3, 7, 11, 20, 29], np.int32)
    data = {"v0": x[0], "v1": x[1], "index": ids}
    banks = [b.features.numpy().copy() for b in m.banks]
    f = [enc(xi).numpy() for enc, xi in zip(m.view_encoders, x, strict=True)]
    noise = m.banks[0].sample_noise(B, K, 3, 0, shared=shared).numpy()
    assert noise.shape == ((1, K) if shared else (B, K))
    noise = np.broadcast_to(noise, (B, K))  # shared: every sample scores the same K rows
    logs = m.train_step(data)
    if loss == "nce":
        l01, z01 = _np_nce(f[0], banks[1], ids, noise)  # view 0 against bank 1 (L -> ab)
        l10, z10 = _np_nce(f[1], banks[0], ids, noise)
        np.testing.assert_allclose(m.z.numpy()[[1, 2]], [z01, z10], rtol=1e-4)
        assert np.all(m.z.numpy()[[0, 3]] == -1)  # unused directions stay unset
    else:
        l01 = _np_softmax(f[0], banks[1], ids, noise)
        l10 = _np_softmax(f[1], banks[0], ids, noise)
    np.testing.assert_allclose(float(logs["loss_v0_to_v1"]), l01, rtol=1e-4)
    np.testing.assert_allclose(float(logs["loss_v1_to_v0"]), l10, rtol=1e-4)
    np.testing.assert_allclose(float(logs["loss"]), l01 + l10, rtol=1e-4)
    for bank, before, fi in zip(m.banks, banks, f, strict=True):
        blend = 0.5 * before[ids] + 0.5 * fi
        np.testing.assert_allclose(bank.features.numpy()[ids],
                                   blend / np.linalg.norm(blend, axis=1, keepdims=True),
                                   rtol=1e-4, atol=1e-6)


def test_full_bank_softmax_scores_each_view_against_every_row_of_the_other_bank():
    m = _model(loss="softmax")
    m.objective.num_negatives = 0  # as num_negatives=0 in the constructor, built faster
    rng = np.random.default_rng(2)
    x = [rng.normal(size=(B, 4)).astype(np.float32) for _ in range(2)]
    ids = np.array([0, 4, 8, 15, 29], np.int32)
    banks = [b.features.numpy().copy() for b in m.banks]
    f = [enc(xi).numpy() for enc, xi in zip(m.view_encoders, x, strict=True)]
    logs = m.train_step({"v0": x[0], "v1": x[1], "index": ids})

    def full(fi, bank):
        logits = fi @ bank.T / TAU
        top = logits.max(1, keepdims=True)
        lse = np.log(np.exp(logits - top).sum(1)) + top[:, 0]
        return np.mean(lse - logits[np.arange(B), ids])

    np.testing.assert_allclose(float(logs["loss_v0_to_v1"]), full(f[0], banks[1]), rtol=1e-4)
    np.testing.assert_allclose(float(logs["loss_v1_to_v0"]), full(f[1], banks[0]), rtol=1e-4)


@pytest.mark.parametrize("n_views,objective", [(3, "core"), (3, "full"), (4, "core"),
                                               (4, "full")])
def test_n_view_objectives_sum_the_right_pairs(n_views, objective):
    m = _model(n_views, loss="softmax", objective=objective)
    feats = _feats(n_views)
    ids = np.array([0, 5, 9, 14, 22], np.int32)
    noise = m.banks[0].sample_noise(B, K, 3, 0).numpy()
    banks = [b.features.numpy() for b in m.banks]
    losses, _ = m.pair_losses([tf.constant(f) for f in feats], tf.constant(ids),
                              tf.constant(noise))
    pairs = ([(0, j) for j in range(1, n_views)] if objective == "core"
             else list(itertools.combinations(range(n_views), 2)))
    expected = sum(_np_softmax(feats[i], banks[j], ids, noise)
                   + _np_softmax(feats[j], banks[i], ids, noise) for i, j in pairs)
    assert set(losses) == {d for i, j in pairs for d in ((i, j), (j, i))}
    np.testing.assert_allclose(float(tf.add_n(list(losses.values()))), expected, rtol=1e-4)


def test_n_view_nce_uses_one_z_per_direction():
    m = _model(3, loss="nce", objective="full")
    feats = _feats(3, seed=2)
    ids = np.array([1, 2, 3, 4, 5], np.int32)
    noise = m.banks[0].sample_noise(B, K, 3, 0).numpy()
    banks = [b.features.numpy() for b in m.banks]
    losses, zs = m.pair_losses([tf.constant(f) for f in feats], tf.constant(ids),
                               tf.constant(noise))
    for (i, j), value in losses.items():
        expected, z = _np_nce(feats[i], banks[j], ids, noise)
        np.testing.assert_allclose(float(value), expected, rtol=1e-4)
        np.testing.assert_allclose(float(zs[(i, j)]), z, rtol=1e-4)


def test_checkpoint_holds_every_bank_and_view_encoder(tmp_path):
    # Layers kept in lists are invisible to tf.train.Checkpoint unless tracked
    # one by one: a resumed CMC run would otherwise restart its banks.
    model = _model(n_views=3)
    for i, bank in enumerate(model.banks):
        bank.features.assign(tf.fill(bank.features.shape, float(i + 1)))
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = _model(n_views=3)
    tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
    for i, bank in enumerate(fresh.banks):
        np.testing.assert_array_equal(bank.features.numpy(), float(i + 1))
    for a, b in zip(model.trainable_variables, fresh.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
