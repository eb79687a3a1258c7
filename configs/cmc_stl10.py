"""CMC on STL-10 with L / ab views: the closest we have to Tian et al.'s STL-10 setting.

The CMC paper pretrains on STL-10's train + unlabeled images (105,000; here
``dataset.stl10_train = "train+unlabeled"``, read memory-mapped from
``stl10_binary/``) and scores a linear classifier trained on the 5,000 labelled
``train`` images on the 8,000 ``test`` images (here: kNN each epoch, and
``python -m tf_contrastive.evaluate --protocols=linear`` afterwards). Their
encoders are AlexNet-style (as we recall the paper; not verified here), one
half-width network per view, on 64x64 crops. We have no AlexNet: one CIFAR-stem
ResNet-18 per view, on random-resized crops (scale 0.2-1) of the 96x96 images
resized to 64, flip only (the paper's Lab
recipe), NCE with K=16384 noise samples, tau 0.07, bank momentum 0.5, SGD lr 0.03
per 256, weight decay 1e-4, lr x0.1 at epochs 120 and 160 of 200. Evaluation
views are the whole 96x96 image resized to 64 (the paper center-crops).

Published figure: the CMC paper reports STL-10 linear-classifier accuracy for its
two-view L / ab model; the figure is not verified here (not found in the sources
our search tool holds), so none is quoted. A ResNet-18 pair is a different encoder
from the paper's, so expect a different figure.
Not reproduced here (a GPU recipe): on this 2-core Xeon (shared) a step runs 10 images/s
(`tools.benchmark --what=train_step`, float32), so one epoch of 410 steps of 256
takes about 3 hours.
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "cmc"
    c.dataset.name = "stl10"
    c.dataset.data_dir = "/data/stl10_binary"
    c.dataset.stl10_train = "train+unlabeled"
    c.dataset.image_size = 64
    c.augment.crop_scale_min = 0.2
    c.model.backbone = "resnet18_cifar"
    c.model.width = 64
    c.model.embedding_dim = 128
    c.cmc.views = "lab"
    c.cmc.loss = "nce"
    c.cmc.num_negatives = 16384
    c.cmc.temperature = 0.07
    c.cmc.momentum = 0.5
    c.cmc.jitter = False
    c.cmc.warm_start = False
    c.optimizer.learning_rate = 0.03
    c.optimizer.weight_decay = 1e-4
    c.optimizer.schedule = "step"
    c.optimizer.decay_epochs = (120, 160)
    c.optimizer.decay_rate = 0.1
    c.train.batch_size = 256
    c.train.epochs = 200
    c.eval.knn_k = 200
    c.eval.knn_sigma = 0.07
    c.eval.every_epochs = 10
    c.eval.knn_at_init = False
    return c
