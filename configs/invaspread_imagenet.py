"""InvaSpread on ImageNet TFRecords with the paper's optimisation defaults.

ResNet-50, 128-d features, batch 128, tau 0.1, SGD lr 0.03 (at batch 128),
momentum 0.9, weight decay 5e-4, lr x0.1 at epochs 120 and 160 (and 200 for
runs extended past 200 epochs with --config.train.epochs).
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "invaspread"
    c.dataset.name = "imagenet"
    c.dataset.data_dir = "/data/imagenet-tfrecords"
    c.dataset.image_size = 224
    c.model.backbone = "resnet50"
    c.invaspread.temperature = 0.1
    c.optimizer.learning_rate = 0.06  # per 256 images: 0.03 at batch 128
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 5e-4
    c.optimizer.schedule = "step"
    c.optimizer.decay_epochs = (120, 160, 200)
    c.train.batch_size = 128
    c.train.epochs = 200
    c.eval.knn_k = 200
    c.eval.knn_sigma = 0.1
    c.eval.every_epochs = 5
    c.eval.knn_at_init = False
    return c
