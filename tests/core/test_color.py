"""RGB -> Lab as TF ops against scikit-image, on random and real images."""

import numpy as np
from skimage import color, data

from tf_contrastive.core.color import rgb_to_lab, rgb_to_ycbcr


def test_lab_matches_skimage_on_random_pixels():
    rgb = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    rgb[0, :3] = [[0, 0, 0], [1, 1, 1], [0.01, 0.02, 0.03]]  # black, white, the linear segment
    np.testing.assert_allclose(rgb_to_lab(rgb).numpy(), color.rgb2lab(rgb), atol=1e-3)


def test_lab_matches_skimage_on_a_real_photo():
    rgb = data.astronaut().astype(np.float32) / 255.0
    np.testing.assert_allclose(rgb_to_lab(rgb).numpy(), color.rgb2lab(rgb), atol=1e-3)


def test_ycbcr_luma_and_neutral_chroma():
    gray = np.full((2, 2, 3), 0.4, np.float32)
    out = rgb_to_ycbcr(gray).numpy()
    np.testing.assert_allclose(out[..., 0], 0.4, atol=1e-6)
    np.testing.assert_allclose(out[..., 1:], 0.5, atol=1e-6)


def test_splits_have_the_documented_channels_and_ranges():
    from tf_contrastive.core.color import split_intensity_gradient, split_lab

    rgb = np.random.default_rng(1).random((2, 8, 8, 3)).astype(np.float32)
    light, ab = split_lab(rgb)
    assert light.shape == (2, 8, 8, 1) and ab.shape == (2, 8, 8, 2)
    np.testing.assert_allclose(light.numpy()[..., 0] * 100, color.rgb2lab(rgb)[..., 0], atol=1e-3)
    gray = np.zeros((1, 6, 6, 1), np.float32)
    gray[:, :, 3:] = 1.0  # a vertical edge: only the x-gradient fires
    i, g = split_intensity_gradient(gray)
    np.testing.assert_array_equal(i.numpy(), gray)
    assert g.shape == (1, 6, 6, 2)
    np.testing.assert_allclose(g.numpy()[..., 0], 0.5, atol=1e-6)  # dy = 0
    assert g.numpy()[0, 3, 2, 1] > 0.5 and g.numpy().min() >= 0 and g.numpy().max() <= 1
