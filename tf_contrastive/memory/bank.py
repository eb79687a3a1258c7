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

    def sample_noise(self, local_batch: tf.Tensor, num_negatives: int, seed: int,
                     step: tf.Tensor, shared: bool = False) -> tf.Tensor:
        """[B, K] uniform noise ids for this replica ([1, K] when ``shared``).

        Drawn for the whole global batch from a stateless seed of (seed, step),
        each replica taking its own rows: N replicas draw exactly what one
        device would for the same global batch, and a resumed run draws what
        the uninterrupted one would have.
        """
        n_rep = distribute.num_replicas()
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
        rows = 1 if shared else local_batch * n_rep
        ids = tf.random.stateless_uniform([rows, num_negatives], key, minval=0,
                                          maxval=self.num_instances, dtype=tf.int32)
        if shared:
            return ids
        return tf.reshape(ids, [n_rep, local_batch, num_negatives])[distribute.replica_id()]

    def logits(self, feats: tf.Tensor, ids: tf.Tensor, noise: tf.Tensor,
               temperature: float) -> tuple[tf.Tensor, tf.Tensor]:
        """(pos [B], neg [B, K]) = (v_id^T f, v_noise^T f) / tau against this bank.

        ``noise`` of shape [1, K] is one set shared by the batch (one [B, K]
        matmul); [B, K] gathers K rows per sample.
        """
        feats = tf.cast(feats, tf.float32)
        pos = tf.reduce_sum(feats * self.gather(ids), axis=-1)
        if noise.shape[0] == 1:
            neg = tf.matmul(feats, self.gather(noise[0]), transpose_b=True)
        else:
            neg = tf.einsum("bd,bkd->bk", feats, self.gather(noise))
        return pos / temperature, neg / temperature

    def gather(self, ids: tf.Tensor) -> tf.Tensor:
        """Rows for ``ids`` (any integer shape) -> ids.shape + (D,)."""
        return tf.gather(self.features.value, tf.cast(ids, tf.int32))

    def _check_ids(self, ids: tf.Tensor) -> tf.Operation:
        """Fails naming the first id outside [0, N): a last guard before the scatter (the
        input pipeline checks each record's id where the record is still known). Not
        enforced under XLA, which compiles asserts away (the train binary's smoke test runs
        with XLA on)."""
        bad = tf.logical_or(ids < 0, ids >= self.num_instances)
        first = tf.argmax(tf.cast(bad, tf.int32))
        outside = f"of the gathered batch is outside the rows [0, {self.num_instances})"
        if tf.executing_eagerly():
            if bool(tf.reduce_any(bad)):
                raise tf.errors.InvalidArgumentError(
                    None, None, f"memory bank update: id {int(tf.gather(ids, first))} at "
                    f"position {int(first)} {outside}")
            return tf.no_op()
        # Tensors as Assert data, not a formatted string: XLA has no string kernels
        # (AsString), but compiles an Assert with numeric data away.
        return tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(bad)),
            ["memory bank update: id", tf.gather(ids, first), "at position", first, outside])

    def update(self, ids: tf.Tensor, feats: tf.Tensor, momentum: float,
               labels: tf.Tensor | None = None) -> None:
        """Momentum update of this step's rows, identical on every replica.

        ``ids``/``feats`` are this replica's; they are gathered across replicas
        here. ``momentum=0`` overwrites the rows (used by the warm start). An id
        outside [0, N) is an error naming it.
        """
        ids = tf.cast(distribute.all_gather(tf.reshape(ids, [-1])), tf.int32)
        with tf.control_dependencies([self._check_ids(ids)]):
            ids = tf.identity(ids)
        feats = distribute.all_gather(tf.stop_gradient(tf.cast(feats, tf.float32)))
        if momentum > 0:
            old = tf.gather(self.features.value, ids)
            feats = momentum * old + (1.0 - momentum) * feats
        feats = tf.math.l2_normalize(feats, axis=-1)
        self.features.value.scatter_update(tf.IndexedSlices(feats, ids))
        if labels is not None:
            labels = distribute.all_gather(tf.cast(tf.reshape(labels, [-1]), tf.int32))
            self.labels.value.scatter_update(tf.IndexedSlices(labels, ids))
