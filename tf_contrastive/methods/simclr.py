"""SimCLR: a simple framework for contrastive learning (Chen, Kornblith, Norouzi, Hinton; ICML 2020).

Two augmentations of each of the B images of a batch go through one encoder (backbone,
then the projection head: ``model.head = "mlp"`` in the shipped configs, the paper's
g(h) = W2 ReLU(W1 h)) in one forward pass; NT-Xent (:mod:`tf_contrastive.losses.ntxent`)
scores each of the 2B_global views against the other 2B_global - 1 of the global batch,
its other view the positive. No memory bank, no momentum encoder: negatives are the
views of the other images, gathered from every replica with their gradient
(``candidates_of``), so, unlike InvaSpread, both sides of every similarity learn.
The representation evaluated and exported is the backbone's pooled features
(``backbone_of``), before the head, as the paper evaluates.

Batch dict consumed: ``view_0`` and ``view_1`` [B, H, W, C] in [0, 1].
Distribution rule: the template's (``methods/base.py``): the loss is this replica's mean
over its 2B anchors, divided by ``num_replicas_in_sync`` for the gradient.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.core import views
from tf_contrastive.core.config import ConfigError
from tf_contrastive.losses.ntxent import ntxent_loss, view_columns
from tf_contrastive.methods.base import (
    ContrastiveModel,
    MethodSpec,
    Step,
    candidates_of,
    image_encoder,
)


class SimCLR(ContrastiveModel):
    """Encoder trained with NT-Xent over the global batch, by ``fit``.

    Trackers: ``loss``; ``pos_sim``, the mean cosine similarity of an image's two
    views; ``contrast_acc``, the share of anchors whose most similar other view is
    their own pair (the reference's ``contrast_acc``).
    """

    def __init__(self, encoder: keras.Model, temperature: float = 0.1, **kwargs):
        super().__init__(encoder, ("loss", "pos_sim", "contrast_acc"), **kwargs)
        self.temperature = float(temperature)

    def step_loss(self, data, training):
        v0, v1 = data["view_0"], data["view_1"]
        b = tf.shape(v0)[0]
        feats = tf.cast(self.encoder(tf.concat([v0, v1], 0), training=training), tf.float32)
        candidates, first = candidates_of(feats, across_replicas=True)
        if candidates is None:
            candidates = feats
        self_index, pair_index = view_columns(b, first)
        loss, logits = ntxent_loss(feats, candidates, self_index, pair_index, self.temperature)
        unit = tf.math.l2_normalize(feats, axis=1)
        pos = tf.reduce_sum(unit[:b] * unit[b:], axis=1)
        hit = tf.cast(
            tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), pair_index), tf.float32
        )
        return Step(loss, {"pos_sim": tf.reduce_mean(pos), "contrast_acc": tf.reduce_mean(hit)})


def build(cfg, info) -> SimCLR:
    return SimCLR(image_encoder(cfg, info), temperature=cfg.simclr.temperature, name="simclr")


def section_rules(cfg) -> None:
    if cfg.simclr.temperature <= 0:
        raise ConfigError(f"config.simclr.temperature: must be > 0, got {cfg.simclr.temperature}")


SPEC = MethodSpec(
    build, section="simclr", views=lambda cfg, info: views.PAIR, section_rules=section_rules
)
