"""The default job: configs/instdisc_fashion_mnist.py cut to 2 epochs (minutes on a CPU)."""

import importlib.util
import os


def get_config():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "instdisc_fashion_mnist.py")
    spec = importlib.util.spec_from_file_location("instdisc_fashion_mnist", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.train.epochs = 2
    c.eval.every_epochs = 1
    return c
