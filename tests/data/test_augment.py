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


def _numpy_blur(img, sigma, radius):
    """Separable Gaussian of one [H, W, C] image, zero padding (the reference's 'SAME')."""
    x = np.arange(-radius, radius + 1)
    k = np.exp(-(x**2) / (2 * sigma**2))
    k /= k.sum()
    h, w, _ = img.shape
    p = np.pad(img, [(0, 0), (radius, radius), (0, 0)])
    img = sum(k[t] * p[:, t:t + w] for t in range(2 * radius + 1))
    p = np.pad(img, [(radius, radius), (0, 0), (0, 0)])
    return sum(k[t] * p[t:t + h] for t in range(2 * radius + 1))


@pytest.mark.parametrize("compiled", [False, True])
def test_gaussian_blur_matches_numpy_per_image_sigma(compiled):
    x = np.random.default_rng(2).random((2, 9, 7, 3)).astype(np.float32)
    sigma = np.array([0.6, 2.0], np.float32)
    assert augment.blur_radius(224) == 11 and augment.blur_radius(32) == 1
    assert augment.blur_radius(16) == 0  # a kernel of one tap: no blur
    fn = tf.function(augment.gaussian_blur, jit_compile=True) if compiled else augment.gaussian_blur
    got = fn(tf.constant(x), tf.constant(sigma), 2).numpy()
    for i in range(2):
        np.testing.assert_allclose(got[i], _numpy_blur(x[i], sigma[i], 2), atol=1e-6)


def test_simclr_colour_strength_and_the_probabilities_of_jitter_and_blur():
    brightness, _, _, hue = augment.jitter_factors(tf.constant([3, 4], tf.int64), 2000, 0.8, 0.2)
    assert 0.2 <= brightness.numpy().min() and brightness.numpy().max() <= 1.8
    assert 0.18 < np.abs(hue.numpy()).max() <= 0.2
    x = tf.constant(np.random.default_rng(3).random((64, 24, 24, 3)).astype(np.float32))
    seed = tf.constant([5, 6], tf.int64)

    def unchanged(**keys):
        base = dict(flip=False, color_jitter=0.0, grayscale_prob=0.0, jit_compile=True)
        cfg = ml_collections.ConfigDict({**base, **keys})
        out = augment.photometric(x, seed, cfg).numpy()
        return (np.abs(out - x.numpy()).max(axis=(1, 2, 3)) == 0).mean(), out

    # Each image jittered (or blurred) with probability 1/2: some are, some are left as they are.
    share, _ = unchanged(color_jitter=0.8, hue=0.2, jitter_prob=0.5)
    assert 0.25 < share < 0.75
    share, out = unchanged(blur_prob=0.5, blur_sigma_min=1.0, blur_sigma_max=2.0)
    assert 0.25 < share < 0.75
    blurred = np.abs(out - x.numpy()).max(axis=(1, 2, 3)) > 0
    tv = np.abs(np.diff(out, axis=2)).mean(axis=(1, 2, 3))
    tv_in = np.abs(np.diff(x.numpy(), axis=2)).mean(axis=(1, 2, 3))
    assert (tv[blurred] < 0.8 * tv_in[blurred]).all()
    assert unchanged(blur_prob=0.0, jitter_prob=0.0, color_jitter=0.4)[0] == 1.0


@pytest.mark.parametrize("compiled", [False, True])
def test_random_erasing_sets_one_rectangle_within_the_scale_and_aspect(compiled):
    rng = np.random.default_rng(4)
    x = rng.uniform(0.1, 1.0, (400, 28, 28, 2)).astype(np.float32)  # no pixel is 0 already
    scale, ratio = (0.02, 0.33), (0.3, 3.3)

    def fn(images, seed):
        return augment.random_erase(images, seed, 0.5, scale, ratio, 0.0)

    if compiled:
        fn = tf.function(fn, jit_compile=True)
    out = fn(tf.constant(x), tf.constant([7, 8], tf.int64)).numpy()
    changed = out != x
    assert (changed.all(axis=3) == changed.any(axis=3)).all()  # every channel, or none
    erased = changed.any(axis=(1, 2, 3))
    assert 0.4 < erased.mean() < 0.6  # probability 1/2 (a draw that fits is all but certain)
    for img, mask in zip(out[erased], changed[erased, :, :, 0], strict=True):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert mask.sum() == h * w  # one solid rectangle ...
        assert (img[mask] == 0).all()  # ... of the fill value
        assert h < 28 and w < 28
        # Sides rounded from sqrt(area * aspect) and sqrt(area / aspect): half a pixel each.
        assert scale[0] * 784 <= (h + 0.5) * (w + 0.5) and (h - 0.5) * (w - 0.5) <= scale[1] * 784
        assert ratio[0] <= (h + 0.5) / (w - 0.5) and (h - 0.5) / (w + 0.5) <= ratio[1]
    assert (out[~erased] == x[~erased]).all()


def test_erasing_changes_nothing_but_the_rectangles_of_the_views():
    x = tf.constant(np.random.default_rng(5).uniform(0.1, 1.0, (64, 16, 16, 3)), tf.float32)
    seed = tf.constant([9, 10], tf.int64)
    base = dict(flip=True, color_jitter=0.4, grayscale_prob=0.2, blur_prob=0.5,
                jit_compile=False)
    plain = augment.photometric(x, seed, ml_collections.ConfigDict(base)).numpy()
    erased = augment.photometric(x, seed, ml_collections.ConfigDict(
        {**base, "erase_prob": 1.0, "erase_value": 0.5})).numpy()
    differ = (erased != plain).any(axis=3)
    assert differ.any(axis=(1, 2)).mean() > 0.9
    np.testing.assert_array_equal(erased[differ], 0.5)
    np.testing.assert_array_equal(erased[~differ], plain[~differ])


def _numpy_antialiased_bilinear(img, size):
    """Separable triangle-filter resize, the filter widened by the shrink factor (PIL's
    BILINEAR, TF's antialiased bilinear): taps outside the image dropped, weights
    renormalised."""

    def matrix(n_in):
        f = n_in / size
        support = max(f, 1.0)
        centre = (np.arange(size) + 0.5) * f
        x = np.arange(n_in) + 0.5
        w = np.maximum(0.0, 1.0 - np.abs((x[None] - centre[:, None]) / support))
        return w / w.sum(1, keepdims=True)

    wy, wx = matrix(img.shape[0]), matrix(img.shape[1])
    rows = np.tensordot(wy, img.astype(np.float64), axes=(1, 0))  # (size, w, c)
    return np.einsum("owc,pw->opc", rows, wx, optimize=True)


@pytest.mark.parametrize("shape", [(150, 200), (224, 224), (400, 450), (440, 200), (100, 300)])
def test_crop_resize_matches_numpy_antialiased_bilinear(shape):
    # Crops no larger than the output on both sides take the plain bilinear path; the
    # pixels must be those of the antialiased filter either way.
    img = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3)).astype(np.uint8)
    got = augment._to_unit(tf.constant(img), 224).numpy()
    want = np.clip(_numpy_antialiased_bilinear(img, 224) / 255.0, 0, 1)
    assert got.shape == (224, 224, 3)
    np.testing.assert_allclose(got, want, atol=2e-5)
