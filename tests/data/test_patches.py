"""CPC v2's patch views: grid geometry, per-patch jitter, per-patch independence."""

import ml_collections
import numpy as np
import tensorflow as tf

from tf_contrastive.data import augment


def _aug(flip=False, jitter=0.0):
    return ml_collections.ConfigDict(dict(flip=flip, color_jitter=jitter, grayscale_prob=0.0))


def test_without_jitter_patches_are_the_eval_grid():
    images = tf.random.uniform((2, 12, 12, 3), seed=0)
    out = augment.random_patches(images, tf.constant([1, 2]), 4, 4, 0, _aug())
    assert out.shape == (2, 3, 3, 4, 4, 3)
    np.testing.assert_array_equal(out[1, 2, 1].numpy(), images[1, 8:12, 4:8].numpy())


def test_jittered_patch_is_a_shifted_window_around_its_grid_cell():
    image = np.arange(16 * 16, dtype=np.float32).reshape(1, 16, 16, 1)
    out = augment.random_patches(tf.constant(image), tf.constant([3, 4]), 4, 4, 2, _aug())
    assert out.shape == (1, 4, 4, 4, 4, 1)
    padded = np.pad(image[0, :, :, 0], 2, mode="symmetric")
    shifts = set()
    for i in range(4):
        for j in range(4):
            patch = out[0, i, j, :, :, 0].numpy()
            found = [(dy, dx) for dy in range(5) for dx in range(5)
                     if np.array_equal(padded[4 * i + dy: 4 * i + dy + 4,
                                              4 * j + dx: 4 * j + dx + 4], patch)]
            assert found, f"patch ({i}, {j}) is not within 2 px of its cell"
            shifts.add(found[0])
    assert len(shifts) > 1  # patches are shifted independently


def test_patches_are_augmented_independently_and_reproducibly():
    images = tf.ones((1, 8, 8, 1)) * 0.5
    a = augment.random_patches(images, tf.constant([5, 6]), 4, 4, 0, _aug(jitter=0.4))
    b = augment.random_patches(images, tf.constant([5, 6]), 4, 4, 0, _aug(jitter=0.4))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    means = a.numpy().reshape(4, -1).mean(axis=1)
    assert len(np.unique(np.round(means, 5))) == 4
