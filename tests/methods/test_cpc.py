"""CPC audio and CPC v2 image: shapes, causality, a learning step, checkpoint round trip."""

import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.losses.infonce import cpc_loss, predict_along_rows
from tf_contrastive.methods.cpc_audio import CPCAudio
from tf_contrastive.methods.cpc_image import DIRECTIONS, CPCImage
from tf_contrastive.models import cpc


def test_audio_encoder_gives_128_frames_for_20480_samples():
    g_enc = cpc.build_audio_encoder(channels=8)
    assert g_enc(tf.zeros((2, 20480))).shape == (2, 128, 8)
    strides = [layer.strides[0] for layer in g_enc.layers if "conv" in layer.name]
    kernels = [layer.kernel_size[0] for layer in g_enc.layers if "conv" in layer.name]
    assert strides == [5, 4, 2, 2, 2] and kernels == [10, 8, 4, 4, 4]
    assert g_enc(tf.zeros((1, 160 * 7))).shape[1] == 7  # one frame per 10 ms at any length


def test_audio_context_is_causal():
    g_ar = cpc.build_audio_context(4, 6)
    z = np.random.default_rng(0).normal(size=(1, 10, 4)).astype(np.float32)
    changed = z.copy()
    changed[:, 6:] += 5.0
    a, b = g_ar(z).numpy(), g_ar(changed).numpy()
    np.testing.assert_allclose(a[:, :6], b[:, :6], atol=1e-6)
    assert not np.allclose(a[:, 6:], b[:, 6:])


def test_masked_context_sees_only_rows_at_or_above():
    ctx = cpc.build_grid_context(5, 7, layers_count=3)
    z = np.random.default_rng(1).normal(size=(2, 6, 6, 5)).astype(np.float32)
    changed = z.copy()
    changed[:, 4:] = 0.0
    a, b = ctx(z).numpy(), ctx(changed).numpy()
    np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-5)
    assert not np.allclose(a[:, 4:], b[:, 4:])


def _audio_model(steps=3, negatives="all"):
    g_enc = cpc.build_audio_encoder(channels=16)
    model = CPCAudio(g_enc, cpc.build_audio_context(16, 8), prediction_steps=steps,
                     negatives=negatives)
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3))
    return model


def _tones(rng, batch, length=2560):
    """Sinusoids of a random frequency each: the future is predictable from the past."""
    t = np.arange(length) / 16000.0
    freqs = rng.uniform(200, 2000, size=(batch, 1))
    return (0.5 * np.sin(2 * np.pi * freqs * t)).astype(np.float32)


def test_audio_step_uses_the_paper_loss_and_learns():
    # A steady tone's frames all look alike, so only other sequences make useful
    # negatives here: with those, telling the tones apart is learnable.
    tf.keras.utils.set_random_seed(0)
    model = _audio_model(negatives="other_sequences")
    x = tf.constant(_tones(np.random.default_rng(0), 6))
    z = model.g_enc(x)
    expected, expected_acc = cpc_loss(z, model.g_ar(z), model.predictors.kernel,
                                      "other_sequences")
    step = tf.function(model.train_step)
    logs = step({"waveform": x})
    np.testing.assert_allclose(float(logs["loss"]), float(expected), rtol=1e-5)
    np.testing.assert_allclose(float(logs["accuracy_k1"]), float(expected_acc[0]), atol=1e-6)
    for _ in range(25):
        step({"waveform": x})
    loss, acc = model.contrastive_loss(x, training=False)
    assert float(loss) < 0.9 * float(expected)
    assert float(tf.reduce_mean(acc)) > float(tf.reduce_mean(expected_acc))


def test_audio_model_rejects_windows_shorter_than_the_prediction_horizon():
    model = _audio_model(steps=12)
    with pytest.raises(ValueError, match="too few for cpc.prediction_steps=12"):
        model.contrastive_loss(tf.zeros((2, 160 * 12)), training=False)


def _image_model(directions=4, steps=2):
    pe = cpc.build_patch_encoder((4, 4, 1), [0.5], [0.25], width=4)
    emb = cpc.build_patch_embedding(pe, (8, 8, 1), 4, 2)
    contexts = {d: cpc.build_grid_context(16, 8, 1, name=f"ctx_{d}")
                for d in DIRECTIONS[directions]}
    model = CPCImage(emb, pe, contexts, prediction_steps=steps)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    return model


def test_image_loss_averages_the_four_directions():
    tf.keras.utils.set_random_seed(1)
    model = _image_model()
    patches = tf.random.uniform((3, 3, 3, 4, 4, 1), seed=1)
    loss, acc = model.contrastive_loss(patches, training=False)
    z = cpc.encode_patches(model.patch_encoder, patches)
    grids = {"down": z, "up": z[:, ::-1], "right": tf.transpose(z, [0, 2, 1, 3]),
             "left": tf.transpose(z, [0, 2, 1, 3])[:, ::-1]}
    losses = [predict_along_rows(g, model.contexts[d](g), model.predictors[d].kernel)[0]
              for d, g in grids.items()]
    np.testing.assert_allclose(float(loss), float(np.mean(losses)), rtol=1e-5)
    assert acc.shape == (2,)


def test_patch_features_match_the_training_patches():
    # The embedding's grid (eval) and encode_patches on patch_grid (train, no jitter) agree.
    model = _image_model(directions=1)
    images = tf.random.uniform((2, 8, 8, 1), seed=2)
    grid = cpc.encode_patches(model.patch_encoder, cpc.patch_grid(images, 4, 2))
    pooled = tf.reduce_mean(grid, axis=[1, 2])
    np.testing.assert_allclose(model.encoder(images).numpy(),
                               tf.math.l2_normalize(pooled, axis=1).numpy(), atol=1e-5)


def test_image_checkpoint_round_trip_restores_every_direction(tmp_path):
    model = _image_model()
    model.train_step({"patches": tf.random.uniform((2, 3, 3, 4, 4, 1), seed=3)})
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = _image_model()
    tf.train.Checkpoint(model=fresh).restore(path).expect_partial()
    for a, b in zip(model.trainable_variables, fresh.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
