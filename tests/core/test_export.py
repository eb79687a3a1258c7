"""Export version folders are always integers, distinct even within one second."""

import os
import time

import tensorflow as tf

from tf_contrastive.core.export import export_encoder
from tf_contrastive.models.encoder import build_encoder


def _encoder():
    return build_encoder((8, 8, 1), "resnet18_cifar", 2, 4, [0.5], [0.25], name="encoder")


def test_exports_get_distinct_integer_versions_even_in_the_same_second(tmp_path):
    root = str(tmp_path / "export")
    encoder = _encoder()
    # A version ahead of the clock (a second export in the same second, or a clock set
    # back) and a folder that is no version: the next export goes one past the newest.
    ahead = int(time.time()) + 1000
    os.makedirs(os.path.join(root, str(ahead)))
    os.makedirs(os.path.join(root, "notes_1"))
    first = export_encoder(encoder, root, (8, 8, 1))
    second = export_encoder(encoder, root, (8, 8, 1))
    assert os.path.basename(first) == str(ahead + 1)
    assert os.path.basename(second) == str(ahead + 2)
    for path in (first, second):
        loaded = tf.saved_model.load(path)
        out = loaded.signatures["serving_default"](images=tf.zeros([2, 8, 8, 1], tf.uint8))
        assert out["embeddings"].shape == (2, 4)
