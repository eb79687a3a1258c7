"""CPC v2 on Fashion-MNIST patches (Henaff et al. 2019, scaled down to 28 px).

A random crop resized to 28 px is cut into a 6 x 6 grid of 8 px patches with
stride 4 (ImageNet's recipe is 64 px patches with stride 32 on 256 px crops);
each patch is shifted by up to 2 px, flipped and jittered on its own. A
layer-norm ResNet (widths 16/32/64) encodes patches, a 2-block masked-conv
context network predicts up to 3 rows ahead in all four directions, negatives
are every other patch of the batch, Adam. Evaluation: linear probe (and kNN)
on the mean-pooled patch features of the whole 28 px image.
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "cpc_image"
    c.dataset.name = "fashion_mnist"
    c.dataset.image_size = 28
    c.augment.crop_scale_min = 0.5
    c.augment.color_jitter = 0.4
    c.augment.grayscale_prob = 0.0
    c.model.width = 16
    c.cpc_image.patch_size = 8
    c.cpc_image.patch_stride = 4
    c.cpc_image.patch_jitter = 2
    c.cpc_image.feature_dim = 128
    c.cpc_image.context_layers = 2
    c.cpc_image.prediction_steps = 3
    c.cpc_image.directions = 4
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 4e-4
    c.optimizer.reference_batch = 0
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "cosine"
    c.train.batch_size = 64
    c.train.epochs = 1
    c.eval.knn_sigma = 0.1
    return c
