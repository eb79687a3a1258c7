"""MoCo v2 on ImageNet TFRecords as in Chen, Fan, Girshick, He 2020 (arXiv:2003.04297).

MoCo v1 (configs/moco_imagenet.py) with an MLP projection head (2048 -> ReLU -> 128),
tau=0.2 and a cosine learning-rate schedule over 200 epochs; K=65536, m=0.999, SGD lr
0.03 per 256 images, momentum 0.9, weight decay 1e-4, batch 256.

Augmentation: v2's recipe, crop scale 0.2-1, ColorJitter(0.4, 0.4, 0.4, 0.1) applied
with probability 0.8, grayscale 0.2, Gaussian blur (sigma 0.1-2, kernel 10% of the
side) with probability 0.5, flip.

Published figure: ImageNet linear classification top-1 67.5% for ResNet-50 after 200
epochs at batch 256 (Chen et al. 2020; the reference code's README gives it as the mean
of 5 trials). Not reproduced here.
"""

from tf_contrastive.core.config import sibling_config


def get_config():
    c = sibling_config(__file__, "moco_imagenet.py")
    c.model.head = "mlp"
    c.model.head_hidden = 0  # the backbone's width: 2048 for ResNet-50
    c.moco.temperature = 0.2
    c.optimizer.schedule = "cosine"
    c.optimizer.decay_epochs = ()
    c.augment.hue = 0.1
    c.augment.jitter_prob = 0.8
    c.augment.blur_prob = 0.5
    return c
