"""Tiny CPC v2 run on scikit-learn's digits, for tests: seconds, not minutes."""

from tf_contrastive.core.config import sibling_config


def get_config():
    c = sibling_config(__file__, "smoke_instdisc_digits.py")  # data, batch, steps of smoke runs
    c.method = "cpc_image"
    c.model.width = 4
    c.cpc_image.patch_size = 4
    c.cpc_image.patch_stride = 2
    c.cpc_image.patch_jitter = 1
    c.cpc_image.feature_dim = 8
    c.cpc_image.context_layers = 1
    c.cpc_image.prediction_steps = 2
    c.cpc_image.directions = 4
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.reference_batch = 0
    return c
