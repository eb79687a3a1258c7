"""InvaSpread: invariant and spreading instance features (Ye et al., CVPR 2019).

Two augmentations of each of the B instances in a batch go through one
encoder (in a single forward pass, as the reference code concatenates them);
the loss (:mod:`tf_contrastive.losses.invaspread`) pulls an instance's two
features together and pushes every other feature of the batch away. No memory
bank: negatives are the other 2(B_global - 1) features of the global batch,
gathered from every replica.

Batch dict consumed: ``view_0`` and ``view_1`` [B, H, W, C] in [0, 1].
Distribution rule: the template's (``methods/base.py``): the loss is this replica's
mean over its 2B anchors, divided by ``num_replicas_in_sync`` for the gradient (so
each replica contributes its share of the global mean over 2B_global anchors).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.core import distribute, views
from tf_contrastive.core.config import ConfigError
from tf_contrastive.losses.invaspread import invaspread_loss
from tf_contrastive.methods.base import ContrastiveModel, MethodSpec, Step, image_encoder


class InvaSpread(ContrastiveModel):
    """Encoder trained with the in-batch instance softmax, by ``fit``."""

    def __init__(self, encoder: keras.Model, temperature: float = 0.1, **kwargs):
        super().__init__(encoder, ("loss", "pos_sim", "neg_sim"), **kwargs)
        self.temperature = float(temperature)

    def step_loss(self, data, training):
        v0, v1 = data["view_0"], data["view_1"]
        b = tf.shape(v0)[0]
        rows = tf.range(2 * b)
        offset = distribute.replica_id() * 2 * b  # this replica's block of columns
        self_index = rows + offset
        pair_index = (rows + b) % (2 * b) + offset
        feats = tf.cast(self.encoder(tf.concat([v0, v1], 0), training=training), tf.float32)
        columns = distribute.all_gather(tf.stop_gradient(feats))
        loss = invaspread_loss(feats, columns, self_index, pair_index, self.temperature,
                               normaliser=2 * b)
        pos = tf.reduce_sum(feats[:b] * feats[b:], axis=1)
        sims = tf.matmul(feats, columns, transpose_b=True)
        neg_mask = 1.0 - tf.one_hot(self_index, tf.shape(columns)[0]) - tf.one_hot(
            pair_index, tf.shape(columns)[0])
        neg = tf.reduce_sum(sims * neg_mask) / tf.reduce_sum(neg_mask)
        return Step(loss, {"pos_sim": tf.reduce_mean(pos), "neg_sim": neg})


def build(cfg, info) -> InvaSpread:
    return InvaSpread(image_encoder(cfg, info), temperature=cfg.invaspread.temperature,
                      name="invaspread")


def section_rules(cfg) -> None:
    if cfg.invaspread.temperature <= 0:
        raise ConfigError(f"config.invaspread.temperature: must be > 0, got "
                          f"{cfg.invaspread.temperature}")


SPEC = MethodSpec(build, section="invaspread", views=lambda cfg, info: views.PAIR,
                  section_rules=section_rules)
