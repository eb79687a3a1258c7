"""CPC networks: the audio encoder/context pair and CPC v2's patch encoder/context net.

Audio (van den Oord et al. 2018): g_enc is a stack of strided 1-D convolutions
with ReLU (strides 5, 4, 2, 2, 2 and kernels 10, 8, 4, 4, 4: one latent z_t per
160 samples, 10 ms at 16 kHz); g_ar is a GRU whose state c_t summarises z_<=t.
Each convolution pads ceil((kernel - stride) / 2) zeros on both sides, so a
window of L samples gives exactly L / 160 frames (128 for 20480), as the
reference implementation's padding (3, 2, 1, 1, 1) does.

Images (Henaff et al. 2019, "CPC v2"): each patch of a grid goes through a
ResNet whose normalisation is layer norm (no batch statistics, which would let
patches of one image share information); a PixelCNN-style stack of masked
convolutions over the grid gives contexts that see only rows at or above their
own, which predict the patches below.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from tf_contrastive.models.encoder import L2Normalize


def _same_length_padding(kernel: int, stride: int) -> int:
    return (kernel - stride + 1) // 2


def build_audio_encoder(channels: int = 512, strides: Sequence[int] = (5, 4, 2, 2, 2),
                        kernels: Sequence[int] = (10, 8, 4, 4, 4),
                        name: str = "g_enc") -> keras.Model:
    """Waveform [B, L] (float, about [-1, 1]) -> latents z [B, L / prod(strides), channels]."""
    if len(strides) != len(kernels):
        raise ValueError(f"cpc.enc_strides {tuple(strides)} and cpc.enc_kernels "
                         f"{tuple(kernels)} need the same length")
    inputs = keras.Input(shape=(None,), name="waveform")
    x = layers.Reshape((-1, 1), name="to_channels")(inputs)
    for i, (k, s) in enumerate(zip(kernels, strides, strict=True)):
        pad = _same_length_padding(int(k), int(s))
        if pad:
            x = layers.ZeroPadding1D(pad, name=f"pad{i}")(x)
        x = layers.Conv1D(channels, int(k), strides=int(s), activation="relu",
                          name=f"conv{i}")(x)
    return keras.Model(inputs, x, name=name)


def build_audio_context(latent_dim: int, units: int = 256, name: str = "g_ar") -> keras.Model:
    """Latents [B, T, latent_dim] -> contexts c [B, T, units] (a causal GRU)."""
    inputs = keras.Input(shape=(None, latent_dim), name="z")
    outputs = layers.GRU(units, return_sequences=True, name="gru")(inputs)
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="tf_contrastive")
class StepPredictors(layers.Layer):
    """One linear map W_k per prediction step k = 1..K, kept as a [K, C, D] kernel."""

    def __init__(self, steps: int, output_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.steps, self.output_dim = int(steps), int(output_dim)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel",
                                      shape=(self.steps, int(input_shape[-1]), self.output_dim),
                                      initializer="glorot_uniform")

    def call(self, c):
        return tf.einsum("...c,kcd->...kd", c, self.kernel)

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "output_dim": self.output_dim}


def build_audio_embedding(g_enc: keras.Model, g_ar: keras.Model,
                          name: str = "encoder") -> keras.Model:
    """Waveform -> L2-normalised mean of c_t: what kNN, probes and serving use.

    The layer named ``head`` is an identity whose input (the mean-pooled
    context, unnormalised) is what ``encoder.backbone_of`` hands to linear
    probes, as for the image encoders.
    """
    inputs = keras.Input(shape=(None,), name="waveform")
    c = g_ar(g_enc(inputs))
    pooled = layers.GlobalAveragePooling1D(name="mean_context", dtype="float32")(c)
    x = layers.Identity(name="head", dtype="float32")(pooled)
    return keras.Model(inputs, L2Normalize(name="l2norm", dtype="float32")(x), name=name)


# --- CPC v2 on images -------------------------------------------------------------


def patch_grid(images: tf.Tensor, size: int, stride: int) -> tf.Tensor:
    """[B, H, W, C] -> [B, Gh, Gw, size, size, C] overlapping patches (no padding)."""
    channels = images.shape[-1]
    p = tf.image.extract_patches(images, sizes=[1, size, size, 1],
                                 strides=[1, stride, stride, 1], rates=[1, 1, 1, 1],
                                 padding="VALID")
    shape = tf.shape(p)
    return tf.reshape(p, [shape[0], shape[1], shape[2], size, size, channels])


def grid_shape(image_size: int, size: int, stride: int) -> int:
    """Patches per side of ``patch_grid`` for a square image."""
    if size > image_size:
        raise ValueError(f"cpc_image.patch_size {size} exceeds the image size {image_size}")
    return (image_size - size) // stride + 1


def _ln_block(x, filters: int, stride: int, name: str):
    """Pre-activation residual block with layer norm over (H, W, C) of each patch."""
    shortcut = x
    y = layers.LayerNormalization(axis=[1, 2, 3], name=f"{name}_ln1")(x)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                 name=f"{name}_proj")(y)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv1")(y)
    y = layers.LayerNormalization(axis=[1, 2, 3], name=f"{name}_ln2")(y)
    y = layers.ReLU(name=f"{name}_relu2")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    return layers.Add(name=f"{name}_add")([shortcut, y])


def build_patch_encoder(patch_shape: tuple[int, int, int], mean: Sequence[float],
                        std: Sequence[float], width: int = 32, blocks_per_stage: int = 1,
                        name: str = "patch_encoder") -> keras.Model:
    """Patch [N, p, p, C] in [0, 1] -> pooled feature z [N, 4 * width].

    Per-channel normalisation, then three stages (width, 2w, 4w; strides 1, 2,
    2) of layer-norm residual blocks.
    """
    inputs = keras.Input(shape=patch_shape, name="patch")
    x = layers.Normalization(mean=[float(m) for m in mean],
                             variance=[float(s) ** 2 for s in std], name="normalize")(inputs)
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem")(x)
    for stage, (mult, stride) in enumerate(((1, 1), (2, 2), (4, 2))):
        for j in range(blocks_per_stage):
            x = _ln_block(x, width * mult, stride if j == 0 else 1, f"s{stage}b{j}")
    x = layers.LayerNormalization(axis=[1, 2, 3], name="final_ln")(x)
    x = layers.ReLU(name="final_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool", dtype="float32")(x)
    return keras.Model(inputs, x, name=name)


@keras.saving.register_keras_serializable(package="tf_contrastive")
class MaskedConv2D(layers.Layer):
    """A 3x3 convolution whose kernel rows below the centre are zero (PixelCNN-style).

    Output row i sees input rows <= i only, however many are stacked.
    """

    def __init__(self, filters: int, kernel_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), int(kernel_size)

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(name="kernel",
                                      shape=(k, k, int(input_shape[-1]), self.filters),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        mask = np.ones((k, k, 1, 1), np.float32)
        mask[k // 2 + 1:] = 0.0
        self.mask = tf.constant(mask)

    def call(self, x):
        kernel = self.kernel * tf.cast(self.mask, self.kernel.dtype)
        return tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + self.bias

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size}


def build_grid_context(feature_dim: int, width: int, layers_count: int = 2,
                       name: str = "context") -> keras.Model:
    """z grid [B, Gh, Gw, feature_dim] -> contexts [B, Gh, Gw, width], causal in rows."""
    inputs = keras.Input(shape=(None, None, feature_dim), name="z_grid")
    x = layers.Conv2D(width, 1, name="in_proj")(inputs)
    for i in range(layers_count):
        y = layers.ReLU(name=f"r{i}_relu1")(x)
        y = MaskedConv2D(width, name=f"r{i}_masked")(y)
        y = layers.ReLU(name=f"r{i}_relu2")(y)
        y = layers.Conv2D(width, 1, name=f"r{i}_proj")(y)
        x = layers.Add(name=f"r{i}_add")([x, y])
    return keras.Model(inputs, x, name=name)


@keras.saving.register_keras_serializable(package="tf_contrastive")
class PatchFeatures(layers.Layer):
    """Image -> grid of patches -> patch encoder -> [B, Gh, Gw, D] features."""

    def __init__(self, patch_encoder: keras.Model, size: int, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.patch_encoder, self.size, self.stride = patch_encoder, int(size), int(stride)

    def call(self, images, training=False):
        return encode_patches(self.patch_encoder, patch_grid(images, self.size, self.stride),
                              training=training)

    def compute_output_shape(self, input_shape):
        g = grid_shape(int(input_shape[1]), self.size, self.stride)
        return (input_shape[0], g, g, self.patch_encoder.output_shape[-1])

    def get_config(self):
        # The patch encoder is serialised inside, so an exported encoder.keras loads.
        return {**super().get_config(), "size": self.size, "stride": self.stride,
                "patch_encoder": keras.saving.serialize_keras_object(self.patch_encoder)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["patch_encoder"] = keras.saving.deserialize_keras_object(
            config["patch_encoder"])
        return cls(**config)


def encode_patches(patch_encoder: keras.Model, patches: tf.Tensor,
                   training: bool = False) -> tf.Tensor:
    """[B, Gh, Gw, p, p, C] -> [B, Gh, Gw, D], every patch encoded independently."""
    shape = tf.shape(patches)
    flat = tf.reshape(patches, tf.concat([[-1], shape[3:]], 0))
    flat.set_shape([None, *patches.shape[3:]])
    z = patch_encoder(flat, training=training)
    return tf.reshape(z, [shape[0], shape[1], shape[2], z.shape[-1]])


def build_patch_embedding(patch_encoder: keras.Model, image_shape: tuple[int, int, int],
                          size: int, stride: int, name: str = "encoder") -> keras.Model:
    """Image in [0, 1] -> L2-normalised mean of its patch features (kNN, probes, serving).

    The ``head`` identity's input, the mean-pooled patch features, is what
    linear probes use (CPC v2's protocol pools the patch grid).
    """
    inputs = keras.Input(shape=image_shape, name="image")
    grid = PatchFeatures(patch_encoder, size, stride, name="patch_features")(inputs)
    pooled = layers.GlobalAveragePooling2D(name="mean_patches", dtype="float32")(grid)
    head = layers.Identity(name="head", dtype="float32")(pooled)
    return keras.Model(inputs, L2Normalize(name="l2norm", dtype="float32")(head), name=name)
