"""Tiny SimCLR run on scikit-learn's digits, for tests: the MLP head, LARS, and the jitter
and blur probabilities (20-pixel crops, so the blur has a 3-tap kernel)."""

from tf_contrastive.core.config import sibling_config


def get_config():
    c = sibling_config(__file__, "smoke_instdisc_digits.py")  # data, model, kNN of the smoke runs
    c.method = "simclr"
    c.dataset.image_size = 20
    c.augment.jitter_prob = 0.8
    c.augment.hue = 0.1
    c.augment.blur_prob = 0.5
    c.model.head = "mlp"
    c.simclr.temperature = 0.5
    c.optimizer.name = "lars"
    c.optimizer.learning_rate = 1.0
    c.optimizer.weight_decay = 1e-6
    c.train.batch_size = 32
    c.train.epochs = 1
    c.train.steps_per_epoch = 3
    return c
