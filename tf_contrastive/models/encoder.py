"""The encoder every method trains: normalise -> backbone -> linear head -> L2-normalise."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from tf_contrastive.models.resnet import build_backbone


@keras.saving.register_keras_serializable(package="tf_contrastive")
class L2Normalize(layers.Layer):
    """Scales each row to unit L2 norm."""

    def call(self, x):
        return x / ops.maximum(ops.norm(x, axis=-1, keepdims=True), 1e-12)


def build_encoder(input_shape: tuple[int, int, int], backbone: str, width: int,
                  embedding_dim: int, mean: Sequence[float], std: Sequence[float],
                  name: str = "encoder") -> keras.Model:
    """Images in [0, 1] -> L2-normalised ``embedding_dim`` features.

    The per-channel mean/std normalisation is part of the model so an exported
    encoder needs nothing but the images scaled to [0, 1].
    """
    inputs = keras.Input(shape=input_shape, name="image")
    mean = [float(m) for m in mean]
    var = [float(s) ** 2 for s in std]
    x = layers.Normalization(mean=mean, variance=var, name="normalize")(inputs)
    x = build_backbone(backbone, input_shape, width)(x)
    x = layers.Dense(embedding_dim, name="head")(x)
    outputs = L2Normalize(name="l2norm")(x)
    return keras.Model(inputs, outputs, name=name)


def backbone_of(encoder: keras.Model) -> keras.Model:
    """The pooled-feature sub-model (input -> backbone output), for linear probes."""
    # The head's input is the backbone's output in the encoder's own graph.
    return keras.Model(encoder.input, encoder.get_layer("head").input, name="features")
