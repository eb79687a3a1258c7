"""MoCo v1 on ImageNet TFRecords as in He et al. 2020 (CVPR), "Momentum Contrast".

ResNet-50, linear head to 128-d, a queue of K=65536 keys, key-encoder momentum
m=0.999, tau=0.07, shuffled BN across replicas; SGD lr 0.03 per 256 images, momentum
0.9, weight decay 1e-4, lr x0.1 at epochs 120 and 160 of 200, batch 256; random
resized crop (scale 0.2-1) to 224, colour jitter 0.4 (hue 0.4 too, as the reference's
ColorJitter(0.4, 0.4, 0.4, 0.4)), random grayscale 0.2, horizontal flip.

Published figure: ImageNet linear classification top-1 60.6% for ResNet-50 (24M
parameters) after 200 epochs (He et al. 2020, the ImageNet linear-protocol comparison).
Not reproduced here (the weighted kNN this run reports is another protocol).
Set --config.dataset.data_dir to the folder of train-*/validation-* shards.
"""

from tf_contrastive.core.config import sibling_config


def get_config():
    # ImageNet data, augmentation, ResNet-50, SGD and its schedule, kNN: InstDisc's recipe.
    c = sibling_config(__file__, "instdisc_imagenet.py")
    c.method = "moco"
    c.model.embedding_dim = 128
    c.model.head = "linear"
    c.moco.queue_size = 65536
    c.moco.momentum = 0.999
    c.moco.temperature = 0.07
    c.moco.shuffle_bn = True
    c.optimizer.reference_batch = 256
    return c
