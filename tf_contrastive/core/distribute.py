"""Strategy factory and the one cross-replica helper every method uses."""

from __future__ import annotations

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name: str, tpu_address: str = "") -> tf.distribute.Strategy:
    """Returns the tf.distribute strategy named by ``config.strategy``.

    ``multi_worker`` reads the cluster from the ``TF_CONFIG`` environment
    variable; ``tpu`` connects to ``tpu_address`` (written to TF's documented
    API, not testable without a TPU).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"config.strategy: unknown strategy {name!r}; known: {STRATEGIES}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that owns checkpoints, summaries and exports.

    Single-host strategies have one worker. In a multi-worker cluster it is the
    ``chief`` task, or worker 0 when the cluster names no chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_dir(workdir: str, strategy: tf.distribute.Strategy) -> str:
    """``workdir`` on the chief; a per-worker scratch dir elsewhere.

    Every worker must take part in saving (the save may run collectives), but
    only the chief's files are kept: the others write here and delete it.
    """
    if is_chief(strategy):
        return workdir
    resolver = strategy.cluster_resolver
    return f"{workdir.rstrip('/')}/.worker_{resolver.task_type}_{resolver.task_id}"


def num_input_pipelines(strategy: tf.distribute.Strategy) -> int:
    """How many input pipelines ``distribute_datasets_from_function`` builds (one per
    worker host), read from the InputContext the strategy hands its dataset function."""
    seen = []

    def probe(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        seen.append(ctx.num_input_pipelines)
        return tf.data.Dataset.range(1)

    strategy.distribute_datasets_from_function(probe)
    return seen[0] if seen else 1


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
