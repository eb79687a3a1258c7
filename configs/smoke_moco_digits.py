"""Tiny MoCo run on scikit-learn's digits, for tests (MLP head, a 128-key queue)."""

from tf_contrastive.core.config import sibling_config


def get_config():
    c = sibling_config(__file__, "smoke_instdisc_digits.py")  # data, model, kNN of the smoke runs
    c.method = "moco"
    c.model.head = "mlp"
    c.model.head_hidden = 8
    c.moco.queue_size = 80  # 3 steps of 32 keys: the third wraps
    c.moco.momentum = 0.9
    c.moco.temperature = 0.2
    c.train.batch_size = 32
    c.train.epochs = 1
    c.train.steps_per_epoch = 3
    return c
