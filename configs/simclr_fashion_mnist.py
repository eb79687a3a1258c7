"""SimCLR on Fashion-MNIST, with the encoder and budget of invaspread_fashion_mnist.

CIFAR-stem ResNet-18 at width 16 with the MLP projection head, batch 128 (256 views),
NT-Xent at tau 0.5 and LARS at lr 1.0 per 256 (0.5 at batch 128) with weight decay
1e-6, one warm-up epoch and cosine decay: the reference's CIFAR-10 settings (its README
command: tau 0.5, lr 1.0, weight decay 1e-6, colour strength 0.5, no blur). Colour
strength 0.5 is brightness/contrast 0.4 (saturation and hue do nothing on grayscale
images), applied with p 0.8.
Measured here (2-core Xeon, oneDNN on, one run, nothing else running): 36 min 27 s,
weighted-kNN top-1 80.94% (untrained 70.29%), below MoCo v2-style's 82.28% and InstDisc's
86.81%; not tuned yet (README, "Figures measured here").
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "simclr"
    c.dataset.name = "fashion_mnist"
    c.dataset.image_size = 28
    c.augment.crop_scale_min = 0.3
    c.augment.color_jitter = 0.4  # 0.8 x strength 0.5
    c.augment.hue = 0.1  # 0.2 x strength 0.5
    c.augment.jitter_prob = 0.8
    c.augment.grayscale_prob = 0.0
    c.model.width = 16
    c.model.head = "mlp"
    c.simclr.temperature = 0.5
    c.optimizer.name = "lars"
    c.optimizer.learning_rate = 1.0  # per 256 images
    c.optimizer.weight_decay = 1e-6
    c.optimizer.warmup_epochs = 1
    c.train.batch_size = 128
    c.train.epochs = 18
    c.eval.knn_sigma = 0.1
    c.eval.every_epochs = 5
    return c
