"""InvaSpread on Fashion-MNIST, with the same encoder and budget as instdisc_fashion_mnist.

Batch 128 instances (256 features), tau 0.1, SGD momentum 0.9, weight decay 5e-4,
lr 0.03 at batch 128 (the paper's), cosine decay over the shorter run.
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "invaspread"
    c.dataset.name = "fashion_mnist"
    c.dataset.image_size = 28
    c.augment.crop_scale_min = 0.3
    c.augment.grayscale_prob = 0.0
    c.model.width = 16
    c.invaspread.temperature = 0.1
    c.optimizer.learning_rate = 0.06  # per 256 images: 0.03 at batch 128
    c.optimizer.weight_decay = 5e-4
    c.train.batch_size = 128
    c.train.epochs = 18
    c.eval.knn_sigma = 0.1
    c.eval.every_epochs = 5
    return c
