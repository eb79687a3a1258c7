"""Tiny InstDisc run on scikit-learn's digits, for tests: seconds, not minutes."""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "instdisc"
    c.dataset.name = "digits"
    c.dataset.image_size = 8
    c.dataset.eval_limit = 200
    c.augment.crop_scale_min = 0.5
    c.model.width = 4
    c.model.embedding_dim = 16
    c.instdisc.num_negatives = 64
    c.instdisc.warm_start = True
    c.train.batch_size = 50
    c.train.epochs = 2
    c.train.steps_per_epoch = 4
    c.train.log_every_steps = 2
    c.eval.knn_k = 20
    return c
