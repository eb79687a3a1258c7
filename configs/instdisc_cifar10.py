"""InstDisc on CIFAR-10 as lemniscate.pytorch's README trains it (Wu et al. 2018).

Its CIFAR command is ``python cifar.py --nce-k 0 --nce-t 0.1 --lr 0.03``: ``--nce-k 0``
selects ``LinearAverage`` + cross-entropy, the non-parametric softmax over all N =
50,000 bank rows (the instance's own row is the label), here ``instdisc.num_negatives
= 0`` with ``instdisc.loss = "softmax"``. The rest is ``cifar.py``'s (its newest
version): CIFAR-stem ResNet-18 (full width), 128-d embedding, tau 0.1, bank momentum
0.5; SGD lr 0.03 at batch 128, momentum 0.9, weight decay 5e-4, 200 epochs, lr x0.1
at epochs 120 and 160 (its ``adjust_learning_rate``: lr * 0.1 ** ((epoch - 80) // 40)
from epoch 80 on, which is x1 until epoch 120); random-resized crop (scale 0.2-1) to
32, colour jitter 0.4, random grayscale 0.2, no horizontal flip (commented out in the
script); weighted kNN with k=200 and sigma = tau = 0.1 on the recomputed training
features. The NCE variant of the same script (its default ``--nce-k 4096``) is
``--config.instdisc.loss=nce --config.instdisc.num_negatives=4096``.

Published figure: the lemniscate README quotes none for CIFAR-10 (only ImageNet kNN
figures); the InstDisc paper (Wu et al. 2018) reports CIFAR-10 figures for the
non-parametric softmax, not verified here (the sources our search tool holds give no
CIFAR table), so none is quoted: check the paper.
Not reproduced here (a GPU recipe): on this 2-core Xeon (shared) a training step
runs 69 images/s (`tools.benchmark --what=train_step`, float32, oneDNN, K=4096), so
one epoch of 390 steps of 128 takes about 12 minutes, 200 epochs about 40 hours.

Set ``--config.dataset.data_dir`` to ``cifar-10-batches-py/`` or the
``cifar-10-python.tar.gz`` itself.
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "instdisc"
    c.dataset.name = "cifar10"
    c.dataset.data_dir = "/data/cifar-10-batches-py"
    c.dataset.image_size = 32
    c.augment.crop_scale_min = 0.2
    c.augment.flip = False
    c.augment.color_jitter = 0.4
    c.augment.grayscale_prob = 0.2
    c.model.backbone = "resnet18_cifar"
    c.model.width = 64
    c.model.embedding_dim = 128
    c.instdisc.loss = "softmax"
    c.instdisc.num_negatives = 0  # every bank row: lemniscate's --nce-k 0
    c.instdisc.temperature = 0.1
    c.instdisc.momentum = 0.5
    c.instdisc.z_momentum = 0.0
    c.instdisc.warm_start = False
    c.optimizer.learning_rate = 0.03
    c.optimizer.reference_batch = 128
    c.optimizer.weight_decay = 5e-4
    c.optimizer.schedule = "step"
    c.optimizer.decay_epochs = (120, 160)
    c.optimizer.decay_rate = 0.1
    c.train.batch_size = 128
    c.train.epochs = 200
    c.eval.knn_k = 200
    c.eval.knn_sigma = 0.1
    c.eval.every_epochs = 10
    return c
