"""TensorBoard summaries beyond Keras's own: lr, Z, bank statistics, view grids."""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import tensorflow as tf


def image_grid(images: tf.Tensor, max_images: int = 16) -> tf.Tensor:
    """[1, H*r, W*c, C] grid of up to ``max_images`` images in [0, 1]."""
    images = images[:max_images]
    n = int(images.shape[0])
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    pad = rows * cols - n
    if pad:
        images = tf.concat([images, tf.zeros([pad, *images.shape[1:]], images.dtype)], 0)
    h, w, c = images.shape[1:]
    grid = tf.reshape(images, [rows, cols, h, w, c])
    grid = tf.transpose(grid, [0, 2, 1, 3, 4])
    return tf.reshape(grid, [1, rows * h, cols * w, c])


class RunMonitor(keras.callbacks.Callback):
    """Writes per-epoch scalars (lr, optimizer steps, what ``scalars`` returns such as
    Z, and the row norms and coverage of each memory bank ``banks`` returns) and a grid
    of augmented views.

    ``views`` is one training batch dict; its image-like keys are drawn once
    (a patch grid [B, Gh, Gw, p, p, C] as the first image's patches in place),
    and waveforms [B, L] are written as audio clips at ``sample_rate``.
    """

    def __init__(self, logdir: str, views: dict | None = None, sample_rate: int = 16000,
                 scalars=None, banks=None):
        """``scalars``: a callable returning {name: value} to write per epoch (the
        trainer passes the method's ``monitor_scalars``); ``banks``: a callable
        returning the memory banks to describe (the method's ``monitored_banks``:
        declared, never guessed from attribute names)."""
        super().__init__()
        self.writer = tf.summary.create_file_writer(logdir)
        self.views = views
        self.sample_rate = sample_rate
        self.scalars = scalars or dict
        self.banks = banks or list

    def on_train_begin(self, logs=None):
        if not self.views:
            return
        with self.writer.as_default(step=0), tf.summary.record_if(True):
            for key, value in self.views.items():
                if value.dtype != tf.float32:
                    continue
                if value.shape.rank == 4:
                    tf.summary.image(f"views/{key}", image_grid(value), step=0)
                elif value.shape.rank == 6:
                    patches = tf.reshape(value[0], [-1, *value.shape[3:]])
                    grid = image_grid(patches, max_images=int(patches.shape[0]))
                    tf.summary.image(f"views/{key}", grid, step=0)
                elif value.shape.rank == 2:
                    clips = tf.clip_by_value(value[:4], -1.0, 1.0)[:, :, None]
                    tf.summary.audio(f"views/{key}", clips, self.sample_rate, step=0)
        self.writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        opt = self.model.optimizer
        step = int(opt.iterations.numpy())
        lr = float(tf.convert_to_tensor(opt.learning_rate))  # may be a mirrored variable
        # record_if(True): Keras's TensorBoard callback keeps a record_if(step % update_freq
        # == 0) active for the whole fit, which would drop these unless an epoch happens
        # to end on a multiple of train.log_every_steps.
        with self.writer.as_default(step=epoch + 1), tf.summary.record_if(True):
            tf.summary.scalar("lr", lr)
            tf.summary.scalar("optimizer_steps", step)
            for name, value in self.scalars().items():
                tf.summary.scalar(name, float(tf.convert_to_tensor(value)))
            banks = list(self.banks())
            for bank in banks:
                prefix = "bank" if len(banks) == 1 else f"bank_{bank.name}"
                feats = tf.convert_to_tensor(bank.features.value)
                norms = tf.norm(feats, axis=1)
                tf.summary.scalar(f"{prefix}/mean_norm", float(tf.reduce_mean(norms)))
                tf.summary.scalar(f"{prefix}/min_norm", float(tf.reduce_min(norms)))
                seen = tf.reduce_mean(tf.cast(bank.labels.value >= 0, tf.float32))
                tf.summary.scalar(f"{prefix}/rows_seen", float(seen))
                tf.summary.histogram(f"{prefix}/row_mean", tf.reduce_mean(feats, axis=1))
            for key, value in (logs or {}).items():
                if key.startswith(("knn_", "probe_eval_")):
                    tf.summary.scalar(f"eval/{key}", float(value))
        self.writer.flush()


def write_projector(logdir: str, embeddings: np.ndarray, labels: np.ndarray,
                    images: np.ndarray | None = None, class_names=None) -> str:
    """Writes a TensorBoard projector export: embeddings, labels and a sprite.

    ``images`` are floats in [0, 1] (N, H, W, C); the sprite is a square grid
    of them, as the projector expects. Returns the projector config path.
    """
    from tensorboard.plugins import projector

    tf.io.gfile.makedirs(logdir)
    with tf.io.gfile.GFile(os.path.join(logdir, "metadata.tsv"), "w") as f:
        f.write("label\tname\n")
        for y in labels:
            name = class_names[int(y)] if class_names else str(int(y))
            f.write(f"{int(y)}\t{name}\n")
    var = tf.Variable(np.asarray(embeddings, np.float32), name="embeddings")
    tf.train.Checkpoint(embeddings=var).save(os.path.join(logdir, "embeddings.ckpt"))
    config = projector.ProjectorConfig()
    emb = config.embeddings.add()
    emb.tensor_name = "embeddings/.ATTRIBUTES/VARIABLE_VALUE"
    emb.metadata_path = "metadata.tsv"
    if images is not None:
        images = np.asarray(images, np.float32)
        if images.shape[1] > 64:  # thumbnails: the sprite must stay under 8192 px
            images = tf.image.resize(images, [64, 64], antialias=True).numpy()
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)
        n = len(images)
        side = int(math.ceil(math.sqrt(n)))
        grid = image_grid(tf.constant(images), max_images=n)
        h, w = images.shape[1:3]
        sprite = tf.image.pad_to_bounding_box(grid[0], 0, 0, side * h, side * w)
        png = tf.io.encode_png(tf.cast(tf.round(sprite * 255.0), tf.uint8))
        with tf.io.gfile.GFile(os.path.join(logdir, "sprite.png"), "wb") as f:
            f.write(png.numpy())
        emb.sprite.image_path = "sprite.png"
        emb.sprite.single_image_dim.extend([int(w), int(h)])
    projector.visualize_embeddings(logdir, config)
    # TensorBoard lists a folder as a run only if it holds an event file.
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default(step=0):
        tf.summary.text("projector", f"{len(labels)} embeddings of dimension "
                        f"{np.shape(embeddings)[1]} with labels"
                        + (" and a sprite" if images is not None else ""))
    writer.close()
    return os.path.join(logdir, "projector_config.pbtxt")
