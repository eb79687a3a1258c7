"""Key queue invariants: unit-norm initial rows, FIFO writes with a wrap, replica agreement."""

import numpy as np
import tensorflow as tf

from tf_contrastive.memory import KeyQueue


def _fifo(queue0: np.ndarray, pointer: int, batches) -> tuple[np.ndarray, int]:
    """MoCo's _dequeue_and_enqueue one key at a time, in NumPy."""
    rows = queue0.copy()
    for keys in batches:
        for key in keys:
            rows[pointer] = key
            pointer = (pointer + 1) % len(rows)
    return rows, pointer


def test_two_enqueues_with_a_wrap_match_a_numpy_fifo():
    queue = KeyQueue(4, 3, seed=2)
    start = queue.keys.numpy().copy()
    np.testing.assert_allclose(np.linalg.norm(start, axis=1), 1.0, rtol=1e-6)
    assert int(queue.pointer.numpy()) == 0
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(3, 3)).astype(np.float32) for _ in range(2)]
    for keys in batches:  # the second batch writes rows 3, then 0 and 1 (the wrap)
        queue.enqueue(tf.constant(keys))
    expected, pointer = _fifo(start, 0, batches)
    np.testing.assert_array_equal(queue.keys.numpy(), expected)
    assert int(queue.pointer.numpy()) == pointer == 2
    np.testing.assert_array_equal(queue.keys.numpy()[2], batches[0][2])  # not yet overwritten


def test_mirrored_enqueue_writes_every_replicas_keys_in_replica_order_on_both_copies(mirrored):
    with mirrored.scope():
        queue = KeyQueue(6, 2, seed=1)
    start = queue.keys.numpy().copy()

    def local(ctx):
        r = tf.cast(ctx.replica_id_in_sync_group, tf.float32)
        return tf.reshape(tf.range(4, dtype=tf.float32), [2, 2]) + 10 * r

    keys = mirrored.experimental_distribute_values_from_function(local)

    @tf.function
    def step(k):
        mirrored.run(queue.enqueue, args=(k,))

    step(keys)
    step(keys)  # rows 4, 5, 0, 1: wraps
    batch = np.array([[0, 1], [2, 3], [10, 11], [12, 13]], np.float32)
    expected, pointer = _fifo(start, 0, [batch, batch])
    copies = [v.numpy() for v in queue.keys.value.values]
    np.testing.assert_array_equal(copies[0], copies[1])
    np.testing.assert_array_equal(copies[0], expected)
    assert [int(v.numpy()) for v in queue.pointer.value.values] == [pointer] * 2 == [2, 2]
