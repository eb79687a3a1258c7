"""Colour jitter against a plain NumPy re-derivation of torchvision's ColorJitter, compiled and not."""

import colorsys

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.data import augment


def _numpy_jitter(x, brightness, contrast, saturation, hue):
    """torchvision's adjust_brightness/_contrast/_saturation/_hue on float images in [0, 1]."""

    def gray(a):  # ITU-R 601-2 luma, as rgb_to_grayscale
        return (0.2989 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2])[..., None]

    out = []
    for img, b, c, s, h in zip(x, brightness, contrast, saturation, hue, strict=True):
        img = np.clip(img * b, 0, 1)
        m = gray(img).mean()
        img = np.clip((img - m) * c + m, 0, 1)
        g = gray(img)
        img = np.clip(g + (img - g) * s, 0, 1)
        flat = img.reshape(-1, 3)
        hsv = np.array([colorsys.rgb_to_hsv(*p) for p in flat])
        hsv[:, 0] = np.mod(hsv[:, 0] + h, 1.0)
        img = np.array([colorsys.hsv_to_rgb(*p) for p in hsv]).reshape(img.shape)
        out.append(np.clip(img, 0, 1))
    return np.stack(out).astype(np.float32)


@pytest.mark.parametrize("compiled", [False, True])
def test_jitter_matches_numpy_torchvision_semantics(compiled):
    rng = np.random.default_rng(0)
    x = rng.random((4, 6, 5, 3)).astype(np.float32)
    factors = [np.array(f, np.float32).reshape(4, 1, 1, 1)
               for f in ([0.6, 1.4, 1.0, 1.3], [1.4, 0.6, 1.2, 0.8], [0.7, 1.3, 0.0, 1.1],
                         [0.3, -0.45, 0.0, 0.1])]
    fn = tf.function(augment.apply_jitter, jit_compile=True) if compiled else augment.apply_jitter
    got = fn(tf.constant(x), *map(tf.constant, factors)).numpy()
    want = _numpy_jitter(x, *(f.ravel() for f in factors))
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_compiled_photometric_is_a_function_of_the_seed():
    cfg = ml_collections.ConfigDict(dict(flip=True, color_jitter=0.4, grayscale_prob=0.2,
                                         jit_compile=True))
    x = tf.constant(np.random.default_rng(1).random((16, 8, 8, 3)).astype(np.float32))
    a = augment.photometric(x, tf.constant([1, 2], tf.int64), cfg).numpy()
    b = augment.photometric(x, tf.constant([1, 2], tf.int64), cfg).numpy()
    c = augment.photometric(x, tf.constant([1, 3], tf.int64), cfg).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1
    assert a.min() >= 0.0 and a.max() <= 1.0
    # Every image jittered: none is left as it came (a flip alone keeps the column means).
    changed = np.abs(np.sort(a, axis=2) - np.sort(x.numpy(), axis=2)).max(axis=(1, 2, 3))
    assert (changed > 1e-3).all()
