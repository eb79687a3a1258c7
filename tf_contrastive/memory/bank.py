"""A memory bank of one L2-normalised feature row per training instance.

The table is a fixed (N, D) non-trainable variable created in the strategy
scope with ``only_first_replica`` aggregation. Updates gather ids and features
from every replica first, so every replica scatters the same rows and the
copies stay identical (a mirrored variable takes the first replica's write).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tf_contrastive.core import distribute


class MemoryBank(keras.layers.Layer):
    """(N, D) feature table plus the label last seen for each row (-1 = unseen).

    Rows start uniform in +-1/sqrt(D/3) as in Wu et al.'s reference code; the
    update is v_i <- normalise(m * v_i + (1 - m) * f_i) for the batch's ids.
    """

    def __init__(self, num_instances: int, dim: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.num_instances = int(num_instances)
        self.dim = int(dim)
        stdv = 1.0 / math.sqrt(self.dim / 3.0)
        self.features = self.add_weight(
            shape=(self.num_instances, self.dim),
            initializer=keras.initializers.RandomUniform(-stdv, stdv, seed=seed),
            trainable=False, aggregation="only_first_replica", name="features")
        self.labels = self.add_weight(
            shape=(self.num_instances,), initializer=keras.initializers.Constant(-1),
            dtype="int32", trainable=False, aggregation="only_first_replica", name="labels")

    def gather(self, ids: tf.Tensor) -> tf.Tensor:
        """Rows for ``ids`` (any integer shape) -> ids.shape + (D,)."""
        return tf.gather(self.features.value, tf.cast(ids, tf.int32))

    def update(self, ids: tf.Tensor, feats: tf.Tensor, momentum: float,
               labels: tf.Tensor | None = None) -> None:
        """Momentum update of this step's rows, identical on every replica.

        ``ids``/``feats`` are this replica's; they are gathered across replicas
        here. ``momentum=0`` overwrites the rows (used by the warm start).
        """
        ids = tf.cast(distribute.all_gather(tf.reshape(ids, [-1])), tf.int32)
        feats = distribute.all_gather(tf.stop_gradient(tf.cast(feats, tf.float32)))
        if momentum > 0:
            old = tf.gather(self.features.value, ids)
            feats = momentum * old + (1.0 - momentum) * feats
        feats = tf.math.l2_normalize(feats, axis=-1)
        self.features.value.scatter_update(tf.IndexedSlices(feats, ids))
        if labels is not None:
            labels = distribute.all_gather(tf.cast(tf.reshape(labels, [-1]), tf.int32))
            self.labels.value.scatter_update(tf.IndexedSlices(labels, ids))
