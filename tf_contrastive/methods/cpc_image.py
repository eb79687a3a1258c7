"""CPC v2 on image patches (Henaff et al. 2019).

Each training image arrives as a grid of independently augmented patches; the
layer-norm ResNet encodes every patch to z_ij, a masked-convolution context
network turns the z grid into contexts c_ij that see rows <= i only, and
W_k c_ij scores the patch k rows below against every other patch of the batch
(:func:`tf_contrastive.losses.infonce.predict_along_rows`). With four
directions, the z grid is also flipped (predicting upwards) and transposed
(sideways), each direction with its own context network and W_k. ``encoder``
(image -> unit-norm mean of the patch features) is what kNN, linear probes and
the exported model use.

Batch dict consumed: ``patches`` float32 [B, Gh, Gw, p, p, C] in about [0, 1].
Distribution rule: as for audio CPC, ``global_negatives`` (the default) scores
against the patches of the whole global batch, gathered from every replica;
otherwise against this replica's. Loss scaling: the template's (``methods/base.py``).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.core import views
from tf_contrastive.core.config import ConfigError
from tf_contrastive.core.fingerprint import SHAPES_REASON
from tf_contrastive.losses.infonce import predict_along_rows
from tf_contrastive.methods.base import ContrastiveModel, MethodSpec, Step, candidates_of
from tf_contrastive.models import cpc
from tf_contrastive.models.cpc import StepPredictors, encode_patches

# Each direction as a re-orientation of the [B, rows, cols, D] grid so that
# "k rows below" in the re-oriented grid is the direction's k-th neighbour.
_ORIENT = {
    "down": lambda g: g,
    "up": lambda g: tf.reverse(g, axis=[1]),
    "right": lambda g: tf.transpose(g, [0, 2, 1, 3]),
    "left": lambda g: tf.reverse(tf.transpose(g, [0, 2, 1, 3]), axis=[1]),
}
DIRECTIONS = {1: ("down",), 4: ("down", "up", "right", "left")}


class CPCImage(ContrastiveModel):
    """Patch encoder + one context network and W_k set per direction, by ``fit``."""

    def __init__(self, embedding: keras.Model, patch_encoder: keras.Model,
                 contexts: dict[str, keras.Model], prediction_steps: int = 2,
                 global_negatives: bool = True, **kwargs):
        steps = int(prediction_steps)
        names = ("loss", "accuracy", *(f"accuracy_k{k}" for k in range(1, steps + 1)))
        super().__init__(embedding, names, **kwargs)
        unknown = set(contexts) - set(_ORIENT)
        if unknown:
            raise ValueError(f"unknown CPC directions {sorted(unknown)}; known: {sorted(_ORIENT)}")
        self.patch_encoder, self.steps = patch_encoder, steps
        self.global_negatives = bool(global_negatives)
        predictors = {}
        for direction, ctx in contexts.items():
            pred = StepPredictors(steps, patch_encoder.output_shape[-1], name=f"w_k_{direction}",
                                  dtype="float32")
            pred.build((None, ctx.output_shape[-1]))
            predictors[direction] = pred
        self.directions = tuple(contexts)
        self.context_nets = self.track("context", [contexts[d] for d in self.directions])
        self.predictor_layers = self.track("w_k", [predictors[d] for d in self.directions])

    @property
    def contexts(self) -> dict[str, keras.Model]:
        return dict(zip(self.directions, self.context_nets, strict=True))

    @property
    def predictors(self) -> dict[str, StepPredictors]:
        return dict(zip(self.directions, self.predictor_layers, strict=True))

    def contrastive_loss(self, patches: tf.Tensor, training: bool):
        z = tf.cast(encode_patches(self.patch_encoder, patches, training=training), tf.float32)
        if patches.shape[1] is not None and patches.shape[1] <= self.steps:
            raise ValueError(f"a grid of {patches.shape[1]} rows is too small for "
                             f"cpc_image.prediction_steps={self.steps}")
        total, accs = 0.0, []
        for direction, ctx in self.contexts.items():
            zd = _ORIENT[direction](z)
            c = tf.cast(ctx(zd, training=training), tf.float32)
            candidates, first = candidates_of(zd, self.global_negatives)
            loss, acc = predict_along_rows(zd, c, self.predictors[direction].kernel,
                                           candidates, first)
            total += loss
            accs.append(acc)
        n = float(len(self.contexts))
        return total / n, tf.add_n(accs) / n

    def _accuracies(self, acc):
        return {"accuracy": tf.reduce_mean(acc),
                **{f"accuracy_k{k + 1}": acc[k] for k in range(self.steps)}}

    def step_loss(self, data, training):
        loss, acc = self.contrastive_loss(data["patches"], training=training)
        return Step(loss, self._accuracies(acc))

    def probe_features(self, data):
        """The mean of the training patches' features, as ``backbone_of(encoder)`` pools
        an image's patch grid (layer norm only: inference mode changes nothing)."""
        z = encode_patches(self.patch_encoder, data["patches"], training=False)
        return tf.reduce_mean(tf.cast(z, tf.float32), axis=[1, 2])

    def test_step(self, data):
        loss, acc = self.contrastive_loss(data["patches"], training=False)
        return self.report(loss=loss, **self._accuracies(acc))


def build(cfg, info) -> CPCImage:
    d = cfg.cpc_image
    channels = info.image_shape[-1]
    patch_encoder = cpc.build_patch_encoder((d.patch_size, d.patch_size, channels), info.mean,
                                            info.std, width=cfg.model.width)
    embedding = cpc.build_patch_embedding(patch_encoder, info.image_shape, d.patch_size,
                                          d.patch_stride)
    contexts = {direction: cpc.build_grid_context(patch_encoder.output_shape[-1],
                                                  d.feature_dim, d.context_layers,
                                                  name=f"context_{direction}")
                for direction in DIRECTIONS[d.directions]}
    return CPCImage(embedding, patch_encoder, contexts, prediction_steps=d.prediction_steps,
                    global_negatives=d.global_negatives, name="cpc_image")


def view_spec(cfg, info) -> views.ViewSpec:
    d = cfg.cpc_image
    return views.patch_grid(d.patch_size, d.patch_stride, d.patch_jitter)


def section_rules(cfg) -> None:
    q = cfg.cpc_image
    if q.directions not in DIRECTIONS:
        raise ConfigError(f"config.cpc_image.directions: must be 1 or 4, got {q.directions}")
    if q.patch_jitter < 0:
        raise ConfigError(f"config.cpc_image.patch_jitter: must be >= 0, got {q.patch_jitter}")


def rules(cfg, info=None) -> None:
    q, size = cfg.cpc_image, cfg.dataset.image_size
    if not 0 < q.patch_stride <= q.patch_size <= size:
        raise ConfigError("config.cpc_image.patch_size: need 0 < patch_stride <= patch_size "
                          f"<= image_size, got {q.patch_stride}, {q.patch_size}, {size}")
    rows = (size - q.patch_size) // q.patch_stride + 1
    if rows <= q.prediction_steps:
        raise ConfigError(f"config.cpc_image.prediction_steps: {q.prediction_steps} needs a "
                          f"grid of more rows than that; the patches give {rows}")


_SHAPE_KEYS = tuple(f"cpc_image.{k}" for k in ("feature_dim", "context_layers",
                                              "prediction_steps", "directions"))

SPEC = MethodSpec(build, section="cpc_image", views=view_spec, section_rules=section_rules,
                  rules=rules,
                  refusal=lambda key, old, new: SHAPES_REASON if key in _SHAPE_KEYS else None)
