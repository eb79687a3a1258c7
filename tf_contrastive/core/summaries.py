"""TensorBoard summaries beyond Keras's own: lr, Z, bank statistics, view grids."""

from __future__ import annotations

import math

import keras
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
    """Writes per-epoch scalars (lr, Z, bank norms and coverage) and a view grid.

    ``views`` is one training batch dict; its image-like keys are drawn once.
    """

    def __init__(self, logdir: str, views: dict | None = None):
        super().__init__()
        self.writer = tf.summary.create_file_writer(logdir)
        self.views = views

    def on_train_begin(self, logs=None):
        if not self.views:
            return
        with self.writer.as_default(step=0):
            for key, value in self.views.items():
                if value.shape.rank == 4:
                    tf.summary.image(f"views/{key}", image_grid(value), step=0)
        self.writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        opt = self.model.optimizer
        step = int(opt.iterations.numpy())
        lr = opt.learning_rate
        with self.writer.as_default(step=epoch + 1):
            tf.summary.scalar("lr", float(lr.numpy() if hasattr(lr, "numpy") else lr))
            tf.summary.scalar("optimizer_steps", step)
            z = getattr(self.model, "z", None)
            if z is not None:
                tf.summary.scalar("nce/Z", float(z.numpy()))
            bank = getattr(self.model, "bank", None)
            if bank is not None:
                feats = tf.convert_to_tensor(bank.features.value)
                norms = tf.norm(feats, axis=1)
                tf.summary.scalar("bank/mean_norm", float(tf.reduce_mean(norms)))
                tf.summary.scalar("bank/min_norm", float(tf.reduce_min(norms)))
                seen = tf.reduce_mean(tf.cast(bank.labels.value >= 0, tf.float32))
                tf.summary.scalar("bank/rows_seen", float(seen))
                tf.summary.histogram("bank/row_mean", tf.reduce_mean(feats, axis=1))
            for key, value in (logs or {}).items():
                if key.startswith("knn_"):
                    tf.summary.scalar(f"eval/{key}", float(value))
        self.writer.flush()
