"""A first-in first-out queue of keys: MoCo's dictionary of negatives (He et al. 2020).

A fixed (K, D) non-trainable table and an int pointer to its oldest row, both
created in the strategy scope with ``only_first_replica`` aggregation, as the
memory bank's (:mod:`tf_contrastive.memory.bank`). :meth:`KeyQueue.enqueue` gathers
the keys of every replica in replica order first, so every replica writes the same
rows and the copies stay identical; a batch that runs past row K-1 wraps to row 0.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.core import distribute


class KeyQueue(keras.layers.Layer):
    """(K, D) keys, the oldest at ``pointer``; rows start as L2-normalised Gaussian
    draws, as MoCo's reference code fills its queue before the first batch."""

    def __init__(self, size: int, dim: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        self.dim = int(dim)
        if self.size < 1:
            raise ValueError(f"KeyQueue: size must be >= 1, got {self.size}")
        normal = keras.initializers.RandomNormal(seed=seed)

        def unit_rows(shape, dtype=None):
            return tf.math.l2_normalize(normal(shape, dtype), axis=-1)

        self.keys = self.add_weight(
            shape=(self.size, self.dim),
            initializer=unit_rows,
            trainable=False,
            aggregation="only_first_replica",
            name="keys",
        )
        self.pointer = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            aggregation="only_first_replica",
            name="pointer",
        )

    def enqueue(self, keys: tf.Tensor) -> None:
        """Writes this step's keys over the oldest rows and advances the pointer.

        ``keys`` are this replica's [B, D]; the rows written are those of every
        replica in replica order, at (pointer + arange(B_global)) mod K. The
        global batch must not exceed K (two keys would race for one row): the
        method's config rules check it.
        """
        keys = distribute.all_gather(tf.stop_gradient(tf.cast(keys, tf.float32)))
        n = tf.shape(keys)[0]
        start = tf.convert_to_tensor(self.pointer.value)
        rows = (start + tf.range(n, dtype=tf.int32)) % self.size
        self.keys.value.scatter_update(tf.IndexedSlices(keys, rows))
        self.pointer.assign((start + n) % self.size)
