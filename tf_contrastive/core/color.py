"""Colour-space conversions and view splits as TensorFlow ops (no tensorflow-io).

They live in ``core`` because both the input pipeline (making CMC's views) and
the exported encoders (splitting an image into the same views in the graph)
need exactly the same ops.

``rgb_to_lab`` follows the sRGB standard (IEC 61966-2-1 gamma) and the D65
white point, the same definition scikit-image's ``rgb2lab`` uses; CMC splits
its output into an L view (1 channel) and an ab view (2 channels).
"""

from __future__ import annotations

import tensorflow as tf

# Linear sRGB -> CIE XYZ for the D65 white (sRGB primaries). Plain lists: a
# tf.constant at import would start TensorFlow's runtime before a
# MultiWorkerMirroredStrategy can configure it.
_RGB_TO_XYZ = [[0.412453, 0.357580, 0.180423],
               [0.212671, 0.715160, 0.072169],
               [0.019334, 0.119193, 0.950227]]
_D65 = [0.95047, 1.0, 1.08883]


def srgb_to_linear(rgb: tf.Tensor) -> tf.Tensor:
    """Undoes the sRGB transfer curve (input in [0, 1])."""
    return tf.where(rgb > 0.04045, tf.pow((rgb + 0.055) / 1.055, 2.4), rgb / 12.92)


def rgb_to_lab(rgb: tf.Tensor) -> tf.Tensor:
    """[..., 3] sRGB in [0, 1] -> [..., 3] Lab (L in [0, 100], a/b roughly [-128, 127])."""
    rgb = tf.clip_by_value(tf.cast(rgb, tf.float32), 0.0, 1.0)
    m = tf.constant(_RGB_TO_XYZ, tf.float32)
    xyz = tf.tensordot(srgb_to_linear(rgb), tf.transpose(m), axes=1) / tf.constant(_D65)
    eps = (6.0 / 29.0) ** 3
    f = tf.where(xyz > eps, tf.pow(tf.maximum(xyz, eps), 1.0 / 3.0),
                 xyz / (3.0 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    fx, fy, fz = tf.unstack(f, axis=-1)
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def rgb_to_ycbcr(rgb: tf.Tensor) -> tf.Tensor:
    """[..., 3] RGB in [0, 1] -> ITU-R BT.601 full-range YCbCr in [0, 1]."""
    rgb = tf.cast(rgb, tf.float32)
    m = tf.constant([[0.299, 0.587, 0.114],
                     [-0.168736, -0.331264, 0.5],
                     [0.5, -0.418688, -0.081312]], tf.float32)
    out = tf.tensordot(rgb, tf.transpose(m), axes=1)
    return out + tf.constant([0.0, 0.5, 0.5])


# Fixed scalings that map each split view to about [0, 1]; the encoders'
# Normalization layers standardise from there.
LAB_SCALE = (100.0, 255.0)  # L / 100, (ab + 128) / 255


def split_lab(rgb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """RGB [..., 3] in [0, 1] -> (L [..., 1], ab [..., 2]), each scaled to ~[0, 1]."""
    lab = rgb_to_lab(rgb)
    return lab[..., :1] / LAB_SCALE[0], (lab[..., 1:] + 128.0) / LAB_SCALE[1]


def split_ycbcr(rgb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """RGB [..., 3] -> (Y [..., 1], CbCr [..., 2]) in [0, 1]: CMC's alternative split."""
    ycc = rgb_to_ycbcr(rgb)
    return ycc[..., :1], ycc[..., 1:]


def split_intensity_gradient(gray: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Grayscale [B, H, W, 1] -> (intensity [B, H, W, 1], Sobel (gy, gx) [B, H, W, 2]).

    The two-view split for single-channel data such as Fashion-MNIST: what the
    pixels are, and where they change. Gradients (at most 4 in magnitude on
    [0, 1] images) are mapped to [0, 1] by g / 8 + 0.5.
    """
    gray = tf.convert_to_tensor(gray, tf.float32)
    edges = tf.image.sobel_edges(gray)[..., 0, :]  # [B, H, W, 2]: dy, dx of channel 0
    return gray, tf.clip_by_value(edges / 8.0 + 0.5, 0.0, 1.0)


SPLITS = {"lab": split_lab, "ycbcr": split_ycbcr,
          "intensity_gradient": split_intensity_gradient}
