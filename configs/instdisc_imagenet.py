"""InstDisc on ImageNet TFRecords as in Wu et al. (CVPR 2018).

ResNet-50, 128-d features, NCE with K=4096 and tau=0.07, bank momentum 0.5,
SGD momentum 0.9, lr 0.03 per 256 images, weight decay 1e-4, lr x0.1 at epochs
120 and 160 of 200; weighted kNN (k=200, sigma=0.07) on the validation set.
Set --config.dataset.data_dir to the folder of train-*/validation-* shards.
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "instdisc"
    c.dataset.name = "imagenet"
    c.dataset.data_dir = "/data/imagenet-tfrecords"
    c.dataset.image_size = 224
    c.augment.crop_scale_min = 0.2
    c.augment.color_jitter = 0.4
    c.augment.grayscale_prob = 0.2
    c.model.backbone = "resnet50"
    c.model.width = 64
    c.instdisc.loss = "nce"
    c.instdisc.num_negatives = 4096
    c.instdisc.temperature = 0.07
    c.instdisc.momentum = 0.5
    c.instdisc.warm_start = False
    c.optimizer.learning_rate = 0.03
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 1e-4
    c.optimizer.schedule = "step"
    c.optimizer.decay_epochs = (120, 160)
    c.optimizer.decay_rate = 0.1
    c.train.batch_size = 256
    c.train.epochs = 200
    c.eval.knn_k = 200
    c.eval.knn_sigma = 0.07
    c.eval.every_epochs = 5
    c.eval.knn_at_init = False  # a full extra pass over 1.28M images
    return c
