"""CPC v2 on Fashion-MNIST patches (Henaff et al. 2019, scaled down to 28 px).

A random crop resized to 28 px is cut into a 6 x 6 grid of 8 px patches with
stride 4 (ImageNet's recipe is 64 px patches with stride 32 on 256 px crops);
each patch is shifted by up to 2 px, flipped and jittered on its own. A
layer-norm ResNet (widths 16/32/64) encodes patches, a 2-block masked-conv
context network predicts up to 3 rows ahead in all four directions, negatives
are every other patch of the batch, Adam. Evaluation: linear probe (and kNN)
on the mean-pooled patch features of the whole 28 px image.

Measured here (2-core Xeon, oneDNN on, XLA off, nothing else running), 5 epochs:
32 min wall (1857 s training); linear probe top-1 82.90% (untrained network
71.90%), weighted kNN 78.13% (untrained 68.68%), kNN monitor 77.97% after epoch 3,
one run. One epoch gave 80.01% / 74.35%. Evaluate with
``python -m tf_contrastive.evaluate --workdir=RUN --protocols=linear,knn``.
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
    c.train.epochs = 5  # 1: linear probe 80.01%; 5: 82.90%
    c.eval.knn_sigma = 0.1
    c.eval.every_epochs = 3
    c.eval.knn_at_init = False  # the untrained figures: evaluate --untrained
    return c
