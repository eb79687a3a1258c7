"""SavedModel export of an encoder for serving (never the training model), and the same
encoder as a Keras ``encoder.keras`` file beside it, for fine-tuning."""

from __future__ import annotations

import os
import time

import keras
import tensorflow as tf

# The Keras model file in each export version folder (save_keras).
KERAS_FILENAME = "encoder.keras"


def export_encoder(encoder: keras.Model, export_root: str,
                   image_shape: tuple[int, int, int], jpeg_view=None,
                   features: keras.Model | None = None) -> str:
    """Writes ``<export_root>/<unix time>/`` with the encoder's serving signatures.

    * ``embed_images``: uint8 ``images`` [N, H, W, C] -> {"embeddings": float32
      [N, D], L2-normalised; with ``features`` given, "features": its output,
      e.g. the pooled backbone [N, F] for linear probes};
      scaling and input normalisation are in the graph.
    * ``embed_jpeg`` (when ``jpeg_view`` is given; then also ``serving_default``):
      ``jpeg`` string [N] of encoded JPEGs -> embeddings, with the evaluation
      preprocessing ``jpeg_view`` (bytes -> [H, W, C] in [0, 1]) in the graph.
    """
    h, w, c = image_shape
    archive = keras.export.ExportArchive()
    archive.track(encoder)

    def outputs(x):
        out = {"embeddings": encoder(x, training=False)}
        if features is not None:
            out["features"] = features(x, training=False)
        return out

    def embed_images(images):
        return outputs(tf.cast(images, tf.float32) / 255.0)

    spec = [tf.TensorSpec([None, h, w, c], tf.uint8, name="images")]
    archive.add_endpoint("embed_images", embed_images, input_signature=spec)
    if jpeg_view is None:
        archive.add_endpoint("serving_default", embed_images, input_signature=spec)
    else:
        def embed_jpeg(jpeg):
            x = tf.map_fn(jpeg_view, jpeg, fn_output_signature=tf.TensorSpec([h, w, c],
                                                                               tf.float32))
            return outputs(x)

        jspec = [tf.TensorSpec([None], tf.string, name="jpeg")]
        archive.add_endpoint("embed_jpeg", embed_jpeg, input_signature=jspec)
        archive.add_endpoint("serving_default", embed_jpeg, input_signature=jspec)
    return _write(archive, export_root)


def export_audio_encoder(embedding: keras.Model, g_enc: keras.Model, g_ar: keras.Model,
                         features: keras.Model, export_root: str) -> str:
    """Writes ``<export_root>/<unix time>/`` for a CPC audio encoder.

    ``embed_waveforms`` (also ``serving_default``): float32 ``waveform`` [N, L]
    in [-1, 1] at the training sample rate, any L that is a multiple of the
    encoder's stride product -> {"embeddings": unit-norm [N, D], "features":
    mean-pooled c_t [N, C], "context": c_t [N, T, C], "latents": z_t [N, T, Z]}.
    """
    archive = keras.export.ExportArchive()
    archive.track(embedding)

    def embed_waveforms(waveform):
        z = g_enc(waveform, training=False)
        return {"embeddings": embedding(waveform, training=False),
                "features": features(waveform, training=False),
                "context": g_ar(z, training=False), "latents": z}

    spec = [tf.TensorSpec([None, None], tf.float32, name="waveform")]
    archive.add_endpoint("embed_waveforms", embed_waveforms, input_signature=spec)
    archive.add_endpoint("serving_default", embed_waveforms, input_signature=spec)
    return _write(archive, export_root)


def save_keras(encoder: keras.Model, export_dir: str) -> str:
    """Writes ``<export_dir>/encoder.keras``: the encoder's architecture and weights,
    which ``keras.saving.load_model`` (or ``tf_contrastive.models.load_encoder``) reads
    back as a trainable Keras model, for fine-tuning. It sits beside the SavedModel's
    files, which ``tf.saved_model.load`` and TensorFlow Serving read without it.
    """
    path = os.path.join(export_dir, KERAS_FILENAME)
    encoder.save(path)
    return path


def next_version(export_root: str) -> int:
    """The version folder name for a new export: the unix time, or one more than the
    newest existing version if that is not older (two exports in one second, or a
    clock set back). Always an integer: TensorFlow Serving ignores other folder names.
    """
    existing = [int(n.rstrip("/")) for n in (tf.io.gfile.listdir(export_root)
                                             if tf.io.gfile.isdir(export_root) else [])
                if n.rstrip("/").isdigit()]
    return max([int(time.time()), *(v + 1 for v in existing)])


def _write(archive: keras.export.ExportArchive, export_root: str) -> str:
    path = os.path.join(export_root, str(next_version(export_root)))
    archive.write_out(path, verbose=False)
    return path
