"""CMC on ImageNet TFRecords, L / ab views (Tian et al. 2019).

NCE with K=16384 (the released weights used 4096), tau=0.07, bank momentum
0.5, SGD lr 0.03, momentum 0.9, weight decay 1e-4, 200 epochs with lr x0.1 at
120 and 160. One encoder per view; Keras's ResNet-50 has no width option, so
each view gets a full-width ResNet-50 (the paper halves the width per view).
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "cmc"
    c.dataset.name = "imagenet"
    c.dataset.data_dir = "/data/imagenet-tfrecords"
    c.dataset.image_size = 224
    c.augment.crop_scale_min = 0.2
    c.model.backbone = "resnet50"
    c.cmc.views = "lab"
    c.cmc.loss = "nce"
    c.cmc.num_negatives = 16384
    c.cmc.temperature = 0.07
    c.optimizer.learning_rate = 0.03
    c.optimizer.weight_decay = 1e-4
    c.optimizer.schedule = "step"
    c.optimizer.decay_epochs = (120, 160)
    c.train.batch_size = 256
    c.train.epochs = 200
    c.eval.knn_sigma = 0.07
    c.eval.every_epochs = 5
    c.eval.knn_at_init = False
    return c
