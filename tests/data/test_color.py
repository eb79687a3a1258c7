"""RGB -> Lab as TF ops against scikit-image, on random and real images."""

import numpy as np
from skimage import color, data

from tf_contrastive.data.color import rgb_to_lab, rgb_to_ycbcr


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
