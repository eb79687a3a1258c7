"""Learning-rate schedules, expressed in optimizer steps and built from the config."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tf_contrastive.core.lars import LARS

SCHEDULES = ("cosine", "step", "constant")
OPTIMIZERS = ("sgd", "adamw", "adam", "lars")


@keras.saving.register_keras_serializable(package="tf_contrastive")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then cosine decay to zero, a step decay, or a constant.

    ``boundaries`` and ``decay_rate`` are used by the step decay: the rate is
    multiplied by ``decay_rate`` at every boundary step passed (InstDisc's x0.1
    at epochs 120 and 160).
    """

    def __init__(self, base_lr: float, total_steps: int, warmup_steps: int = 0,
                 kind: str = "cosine", boundaries: tuple[int, ...] = (),
                 decay_rate: float = 0.1):
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.kind = kind
        self.boundaries = tuple(int(b) for b in boundaries)
        self.decay_rate = float(decay_rate)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        lr = tf.constant(self.base_lr, tf.float32)
        if self.kind == "cosine":
            span = max(self.total_steps - self.warmup_steps, 1)
            progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
            lr = lr * 0.5 * (1.0 + tf.cos(math.pi * progress))
        elif self.kind == "step":
            passed = tf.add_n([tf.cast(step >= b, tf.float32) for b in self.boundaries]
                              or [tf.constant(0.0)])
            lr = lr * tf.pow(self.decay_rate, passed)
        if self.warmup_steps > 0:
            lr = lr * tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return lr

    def get_config(self):
        return dict(base_lr=self.base_lr, total_steps=self.total_steps,
                    warmup_steps=self.warmup_steps, kind=self.kind,
                    boundaries=self.boundaries, decay_rate=self.decay_rate)


def build_optimizer(opt_cfg, global_batch: int, steps_per_epoch: int,
                    epochs: int) -> keras.optimizers.Optimizer:
    """SGD with momentum, AdamW, Adam or LARS; lr scaled linearly from ``reference_batch``.

    LARS (``core.lars``, SimCLR's) takes ``momentum``, ``weight_decay`` (added to the
    gradient, not decoupled) and ``lars_eta``; biases and batch-norm parameters are
    excluded from both its decay and its adaptation.

    ``opt_cfg.reference_batch`` = 0 takes the learning rate as given (CPC's
    Adam 2e-4 is not a per-256 figure).
    """
    scale = global_batch / opt_cfg.reference_batch if opt_cfg.reference_batch else 1.0
    base_lr = opt_cfg.learning_rate * scale
    schedule = WarmupSchedule(
        base_lr=base_lr,
        total_steps=steps_per_epoch * epochs,
        warmup_steps=steps_per_epoch * opt_cfg.warmup_epochs,
        kind=opt_cfg.schedule,
        boundaries=tuple(e * steps_per_epoch for e in opt_cfg.decay_epochs),
        decay_rate=opt_cfg.decay_rate,
    )
    if opt_cfg.name == "sgd":
        return keras.optimizers.SGD(learning_rate=schedule, momentum=opt_cfg.momentum,
                                    weight_decay=opt_cfg.weight_decay or None)
    if opt_cfg.name == "adamw":
        return keras.optimizers.AdamW(learning_rate=schedule,
                                      weight_decay=opt_cfg.weight_decay)
    if opt_cfg.name == "adam":
        return keras.optimizers.Adam(learning_rate=schedule,
                                     weight_decay=opt_cfg.weight_decay or None)
    if opt_cfg.name == "lars":
        return LARS(learning_rate=schedule, momentum=opt_cfg.momentum,
                    weight_decay=opt_cfg.weight_decay, eta=opt_cfg.lars_eta)
    raise ValueError(f"config.optimizer.name: {opt_cfg.name!r} is not one of {OPTIMIZERS}")
