"""Memory bank invariants: initial range, the momentum update rule, replica agreement."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.memory import MemoryBank


def test_initial_rows_are_uniform_in_reference_range():
    bank = MemoryBank(500, 128, seed=3)
    rows = bank.features.numpy()
    stdv = 1.0 / math.sqrt(128 / 3)
    assert rows.shape == (500, 128)
    assert rows.min() >= -stdv and rows.max() <= stdv
    assert rows.min() < -0.9 * stdv and rows.max() > 0.9 * stdv
    assert np.all(bank.labels.numpy() == -1)


def test_update_is_normalised_momentum_blend_of_batch_rows_only():
    bank = MemoryBank(10, 4, seed=0)
    before = bank.features.numpy().copy()
    ids = tf.constant([2, 7])
    feats = tf.math.l2_normalize(tf.constant([[1.0, 2, 3, 4], [4, 3, 2, 1]]), axis=1)
    bank.update(ids, feats, momentum=0.5, labels=tf.constant([5, 6]))
    after = bank.features.numpy()
    expected = 0.5 * before[[2, 7]] + 0.5 * feats.numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(after[[2, 7]], expected, rtol=1e-6)
    untouched = [i for i in range(10) if i not in (2, 7)]
    np.testing.assert_array_equal(after[untouched], before[untouched])
    assert bank.labels.numpy()[2] == 5 and bank.labels.numpy()[7] == 6


def test_momentum_zero_overwrites():
    bank = MemoryBank(5, 3)
    bank.update(tf.constant([1]), tf.constant([[0.0, 3.0, 4.0]]), momentum=0.0)
    np.testing.assert_allclose(bank.features.numpy()[1], [0, 0.6, 0.8], rtol=1e-6)


def test_mirrored_update_writes_every_replicas_rows_on_both_copies(mirrored):
    strategy = mirrored
    with strategy.scope():
        bank = MemoryBank(8, 2, seed=1)

    def per_replica(ctx):
        r = ctx.replica_id_in_sync_group
        ids = tf.constant([0, 1]) + 2 * r
        feats = tf.ones([2, 2]) * tf.cast(r + 1, tf.float32)
        return ids, feats

    ids = strategy.experimental_distribute_values_from_function(lambda c: per_replica(c)[0])
    feats = strategy.experimental_distribute_values_from_function(lambda c: per_replica(c)[1])

    @tf.function
    def step(i, f):
        strategy.run(lambda a, b: bank.update(a, b, momentum=0.0), args=(i, f))

    step(ids, feats)
    copies = [v.numpy() for v in bank.features.value.values]
    np.testing.assert_array_equal(copies[0], copies[1])
    unit = 1 / math.sqrt(2)
    np.testing.assert_allclose(copies[0][:4], np.full((4, 2), unit), rtol=1e-6)


def test_update_with_an_id_outside_the_bank_is_an_error_naming_it():
    bank = MemoryBank(10, 3)
    before = bank.features.numpy().copy()
    feats = tf.math.l2_normalize(tf.ones([3, 3]), axis=1)

    @tf.function
    def step(ids):
        bank.update(ids, feats, momentum=0.5)

    for bad, at in ((-1, 1), (10, 2)):  # multi-view records default image/id to -1
        ids = tf.constant([3, 4, 5])
        ids = tf.tensor_scatter_nd_update(ids, [[at]], [bad])
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=rf"id\] \[{bad}\] \[at position\] \[{at}\] \[of the "
                           r"gathered batch is outside the rows \[0, 10\)"):
            step(ids)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"outside the rows \[0, 10\)"):
            bank.update(ids, feats, momentum=0.0)  # eagerly, and without the gather
    np.testing.assert_array_equal(bank.features.numpy(), before)
