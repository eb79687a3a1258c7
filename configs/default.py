"""The default job: configs/instdisc_fashion_mnist.py cut to 2 epochs (minutes on a CPU)."""

from tf_contrastive.core.config import sibling_config


def get_config():
    c = sibling_config(__file__, "instdisc_fashion_mnist.py")
    c.train.epochs = 2
    c.eval.every_epochs = 1
    return c
