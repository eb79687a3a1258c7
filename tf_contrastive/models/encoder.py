"""The encoder every method trains: normalise -> backbone -> head -> L2-normalise.

The head is linear (InstDisc, InvaSpread, CMC, MoCo v1) or an MLP, Dense -> ReLU ->
Dense (the projection head of SimCLR and MoCo v2). Its last layer is always named
``head``; the MLP's first is ``head_hidden``, and :func:`backbone_of` finds the pooled
features at the input of whichever comes first.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from tf_contrastive.core import color
from tf_contrastive.models.resnet import build_backbone

HEADS = ("linear", "mlp")


@keras.saving.register_keras_serializable(package="tf_contrastive")
class L2Normalize(layers.Layer):
    """Scales each row to unit L2 norm."""

    def call(self, x):
        return x / ops.maximum(ops.norm(x, axis=-1, keepdims=True), 1e-12)


def build_encoder(input_shape: tuple[int, int, int], backbone: str, width: int,
                  embedding_dim: int, mean: Sequence[float], std: Sequence[float],
                  name: str = "encoder", sync_bn: bool = False, head: str = "linear",
                  head_hidden: int = 0) -> keras.Model:
    """Images in [0, 1] -> L2-normalised ``embedding_dim`` features.

    The per-channel mean/std normalisation is part of the model so an exported
    encoder needs nothing but the images scaled to [0, 1]. ``head``: "linear" or
    "mlp" (``head_hidden`` units, 0 = the backbone's feature width).
    """
    inputs = keras.Input(shape=input_shape, name="image")
    mean = [float(m) for m in mean]
    var = [float(s) ** 2 for s in std]
    x = layers.Normalization(mean=mean, variance=var, name="normalize")(inputs)
    x = build_backbone(backbone, input_shape, width, sync_bn=sync_bn)(x)
    return keras.Model(inputs, _head(x, embedding_dim, head, head_hidden), name=name)


def _head(features, embedding_dim: int, head: str = "linear", head_hidden: int = 0):
    """Pooled features -> the head -> L2-normalised embeddings (float32 under a
    mixed-precision policy)."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; known: {HEADS}")
    x = features
    if head == "mlp":
        hidden = int(head_hidden) or int(features.shape[-1])
        x = layers.Dense(hidden, name="head_hidden", dtype="float32")(x)
        x = layers.ReLU(name="head_relu", dtype="float32")(x)
    x = layers.Dense(embedding_dim, name="head", dtype="float32")(x)
    return L2Normalize(name="l2norm", dtype="float32")(x)


def add_head(backbone: keras.Model, embedding_dim: int = 128,
             input_shape: tuple[int, ...] | None = None, name: str = "encoder",
             head: str = "linear", head_hidden: int = 0) -> keras.Model:
    """A method's encoder from any Keras ``backbone`` (inputs -> pooled [B, F] features):
    the backbone, then the ``head`` ("linear" or "mlp", as :func:`build_encoder`) to
    ``embedding_dim`` and an L2 normalisation (so :func:`backbone_of` finds the pooled
    features again).

    ``input_shape`` (without the batch axis) defaults to the backbone's own; a
    subclassed backbone without one needs it. The head and the normalisation run
    in float32 whatever the precision policy.
    """
    if input_shape is None:
        try:
            input_shape = tuple(backbone.inputs[0].shape[1:])
        except (AttributeError, IndexError, ValueError) as e:
            raise ValueError(f"add_head: backbone {backbone.name!r} has no defined input; "
                             "pass input_shape=(H, W, C)") from e
    inputs = keras.Input(shape=input_shape, name="image")
    features = backbone(inputs)
    if len(features.shape) != 2:
        raise ValueError(f"add_head: backbone {backbone.name!r} outputs shape "
                         f"{tuple(features.shape)}; it must give pooled [batch, features] "
                         "(end it with e.g. keras.layers.GlobalAveragePooling2D())")
    return keras.Model(inputs, _head(features, embedding_dim, head, head_hidden), name=name)


def backbone_of(encoder: keras.Model) -> keras.Model:
    """The pooled-feature sub-model (input -> backbone output), for linear probes.

    For a multi-view encoder it is the concatenation of every view's pooled
    features (the CMC protocol).
    """
    names = [layer.name for layer in encoder.layers]
    if "view_split" in names:  # Re-apply the shared view layers to get their features.
        views = encoder.get_layer("view_split")(encoder.input)
        both = [encoder.get_layer(n) for n in names if n.endswith("_both")]
        pooled = [m(v)[1] for m, v in zip(both, views, strict=True)]
        out = layers.Concatenate(name="view_features")(pooled)
    else:  # The head's input is the backbone's output in the encoder's own graph.
        out = encoder.get_layer("head_hidden" if "head_hidden" in names else "head").input
    return keras.Model(encoder.input, out, name="features")


@keras.saving.register_keras_serializable(package="tf_contrastive")
class ViewSplit(layers.Layer):
    """Splits an image into views with a named function of core.color.SPLITS."""

    def __init__(self, split: str, **kwargs):
        # Colour conversions run in float32 whatever the mixed-precision policy.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if split not in color.SPLITS:
            raise ValueError(f"unknown view split {split!r}; known: {sorted(color.SPLITS)}")
        self.split = split

    def call(self, images):
        return list(color.SPLITS[self.split](images))

    def compute_output_shape(self, input_shape):
        out = [(*input_shape[:-1], 1), (*input_shape[:-1], 2)]
        return out

    def get_config(self):
        return {**super().get_config(), "split": self.split}


def build_multiview_encoder(input_shape: tuple[int, int, int], split: str,
                            view_encoders: Sequence[keras.Model],
                            name: str = "encoder") -> keras.Model:
    """Image -> its views -> each view's encoder -> concatenated embedding.

    Each view's embedding is unit-norm, so the concatenation is divided by
    sqrt(number of views) to be unit-norm too. ``backbone_of`` gives the
    concatenated pooled features of the views, for linear probes.``
    """
    inputs = keras.Input(shape=input_shape, name="image")
    views = ViewSplit(split, name="view_split")(inputs)
    embeddings = []
    for enc, view in zip(view_encoders, views, strict=True):
        both = keras.Model(enc.input, [enc.output, enc.get_layer("head").input],
                           name=f"{enc.name}_both")
        embeddings.append(both(view)[0])
    scale = 1.0 / float(len(view_encoders)) ** 0.5
    # float32 like each view's head, whatever the mixed-precision policy.
    joined = layers.Concatenate(name="view_embeddings", dtype="float32")(embeddings)
    outputs = layers.Rescaling(scale, name="unit_norm", dtype="float32")(joined)
    return keras.Model(inputs, outputs, name=name)
