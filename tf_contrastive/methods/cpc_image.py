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
otherwise against this replica's. Each replica's loss is divided by the number
of replicas.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.core import distribute
from tf_contrastive.losses.infonce import predict_along_rows
from tf_contrastive.methods.base import ContrastiveModel, candidates_of
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

    def _report(self, loss, acc):
        per_k = {f"accuracy_k{k + 1}": acc[k] for k in range(self.steps)}
        return self.report(loss=loss, accuracy=tf.reduce_mean(acc), **per_k)

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, acc = self.contrastive_loss(data["patches"], training=True)
            share = loss / tf.cast(distribute.num_replicas(), tf.float32)
        self.apply_gradients_of(share, tape)
        return self._report(loss, acc)

    def test_step(self, data):
        loss, acc = self.contrastive_loss(data["patches"], training=False)
        return self._report(loss, acc)
