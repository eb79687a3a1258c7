"""Tiny CMC run on scikit-learn's digits (intensity / gradient views), for tests."""

from tf_contrastive.core.config import sibling_config


def get_config():
    c = sibling_config(__file__, "smoke_instdisc_digits.py")  # data, model, kNN of the smoke runs
    c.method = "cmc"
    c.cmc.views = "intensity_gradient"
    c.cmc.num_negatives = 64
    c.cmc.warm_start = True
    c.train.epochs = 1
    c.train.steps_per_epoch = 3
    return c
