"""Tiny InvaSpread run on scikit-learn's digits, for tests."""

from tf_contrastive.core.config import sibling_config


def get_config():
    c = sibling_config(__file__, "smoke_instdisc_digits.py")  # data, model, kNN of the smoke runs
    c.method = "invaspread"
    c.train.batch_size = 32
    c.train.epochs = 1
    c.train.steps_per_epoch = 3
    return c
