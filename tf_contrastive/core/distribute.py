"""Strategy factory and the one cross-replica helper every method uses."""

from __future__ import annotations

import tensorflow as tf


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Returns the tf.distribute strategy named by ``config.strategy``."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    raise ValueError(f"config.strategy: unknown strategy {name!r}; known: default, mirrored")


def num_replicas() -> int:
    """Replicas in sync for the current context (1 outside any strategy)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_id() -> tf.Tensor:
    """This replica's index in the sync group, as an int32 tensor (0 with one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return tf.constant(0, tf.int32)
    return tf.cast(ctx.replica_id_in_sync_group, tf.int32)


def all_gather(x: tf.Tensor) -> tf.Tensor:
    """Concatenates ``x`` from every replica along axis 0, in replica order.

    A no-op with one replica, so single-device code pays nothing for it.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_gather(x, axis=0)


def all_reduce_mean(x: tf.Tensor) -> tf.Tensor:
    """Mean of ``x`` over replicas (identity with one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, x)
