"""SavedModel export of an encoder for serving (never the training model)."""

from __future__ import annotations

import os
import time

import keras
import tensorflow as tf


def export_encoder(encoder: keras.Model, export_root: str,
                   image_shape: tuple[int, int, int]) -> str:
    """Writes ``<export_root>/<unix time>/`` with the signature ``embed_images``.

    ``embed_images`` (also ``serving_default``) takes uint8 images
    [N, H, W, C] and returns {"embeddings": float32 [N, D]}, L2-normalised;
    scaling to [0, 1] and the input normalisation happen inside the graph.
    """
    h, w, c = image_shape
    archive = keras.export.ExportArchive()
    archive.track(encoder)

    def embed_images(images):
        x = tf.cast(images, tf.float32) / 255.0
        return {"embeddings": encoder(x, training=False)}

    spec = [tf.TensorSpec([None, h, w, c], tf.uint8, name="images")]
    archive.add_endpoint("embed_images", embed_images, input_signature=spec)
    archive.add_endpoint("serving_default", embed_images, input_signature=spec)
    path = os.path.join(export_root, str(int(time.time())))
    while tf.io.gfile.exists(path):  # Two exports in one second.
        path += "_1"
    archive.write_out(path, verbose=False)
    return path
