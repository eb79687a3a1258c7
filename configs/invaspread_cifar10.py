"""InvaSpread on CIFAR-10 in the setting of Ye et al. 2019 (CVPR), ``demo_seen.py``.

Their code (mangye16/Unsupervised_Embedding_Learning): CIFAR-stem ResNet-18,
128-d embedding, batch 128 instances (two augmentations each), tau 0.1; SGD lr
0.03, momentum 0.9, weight decay 5e-4, lr x0.1 from epoch 120; random-resized
crop (scale 0.2-1) to 32, colour jitter 0.4, random grayscale 0.2, horizontal flip;
weighted kNN with k=200, sigma = tau = 0.1 on the whole training set. Their loop
runs 301 epochs; the paper compares methods at 200, which is what this runs.

Published figure: Ye et al. 2019 report a CIFAR-10 kNN top-1 for ResNet-18; the
figure is not verified here (the sources our search tool holds give no table), so
none is quoted: check the paper.
Not reproduced here (a GPU recipe): on this 2-core Xeon (shared) a step runs 39
images/s (`tools.benchmark --what=train_step`, float32), so an epoch of 390 steps of
128 takes about 21 minutes.
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "invaspread"
    c.dataset.name = "cifar10"
    c.dataset.data_dir = "/data/cifar-10-batches-py"
    c.dataset.image_size = 32
    c.augment.crop_scale_min = 0.2
    c.augment.flip = True
    c.augment.color_jitter = 0.4
    c.augment.grayscale_prob = 0.2
    c.model.backbone = "resnet18_cifar"
    c.model.width = 64
    c.model.embedding_dim = 128
    c.invaspread.temperature = 0.1
    c.optimizer.learning_rate = 0.03
    c.optimizer.reference_batch = 128
    c.optimizer.weight_decay = 5e-4
    c.optimizer.schedule = "step"
    c.optimizer.decay_epochs = (120,)
    c.optimizer.decay_rate = 0.1
    c.train.batch_size = 128
    c.train.epochs = 200
    c.eval.knn_k = 200
    c.eval.knn_sigma = 0.1
    c.eval.every_epochs = 10
    return c
