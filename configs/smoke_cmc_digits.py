"""Tiny CMC run on scikit-learn's digits (intensity / gradient views), for tests."""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "cmc"
    c.dataset.name = "digits"
    c.dataset.image_size = 8
    c.dataset.eval_limit = 200
    c.augment.crop_scale_min = 0.5
    c.model.width = 4
    c.model.embedding_dim = 16
    c.cmc.views = "intensity_gradient"
    c.cmc.num_negatives = 64
    c.cmc.warm_start = True
    c.train.batch_size = 50
    c.train.epochs = 1
    c.train.steps_per_epoch = 3
    c.eval.knn_k = 20
    return c
