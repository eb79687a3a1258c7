"""The default job: InstDisc on Fashion-MNIST, sized to finish in minutes on a CPU."""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "instdisc"
    c.dataset.name = "fashion_mnist"
    c.dataset.image_size = 28
    c.augment.crop_scale_min = 0.3
    c.augment.grayscale_prob = 0.0
    c.model.width = 16
    c.instdisc.loss = "softmax"
    c.instdisc.temperature = 0.1
    c.instdisc.warm_start = True
    # One set of K negatives per batch: 16% more images/s here (tools/benchmark.py).
    c.instdisc.shared_negatives = True
    c.optimizer.learning_rate = 0.06  # per 256: 0.03 at batch 128, as the reference CIFAR run
    c.optimizer.weight_decay = 5e-4
    c.train.batch_size = 128
    c.train.epochs = 2
    c.eval.knn_sigma = 0.1
    return c
