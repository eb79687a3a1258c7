"""The schema's own rules: bad values fail naming the key. (Every config file loading,
validating and building its model, and the methods' section rules:
tests/methods/test_specs.py.)"""

import glob
import os

import pytest

from tf_contrastive.core.config import ConfigError, base_config, validate
from tf_contrastive.data.pipeline import check_config as dataset_rules

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
CONFIGS = sorted(p for p in glob.glob(os.path.join(CONFIG_DIR, "*.py"))
                 if not os.path.basename(p).startswith("_"))


def test_there_are_configs():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {"default.py", "instdisc_fashion_mnist.py", "instdisc_imagenet.py"} <= names


@pytest.mark.parametrize("key,value,match", [
    ("dataset.name", "cifar", "dataset.name"),
    ("augment.crop_scale_min", 1.5, "augment.crop_scale_min"),
    ("train.batch_size", 0, "train.batch_size"),
    ("eval.knn_sigma", -1.0, "eval.knn_sigma"),
    ("optimizer.name", "adagrad", "config.optimizer.name: 'adagrad' is not one of "
                                  r"\('sgd', 'adamw', 'adam', 'lars'\)"),
    ("optimizer.lars_eta", 0.0, "config.optimizer.lars_eta: must be > 0, got 0.0"),
    ("optimizer.momentum", 1.0, r"optimizer.momentum: must be in \[0, 1\), got 1.0"),
    ("eval.batch_size", 0, "eval.batch_size: must be >= 1"),
    ("augment.hue", 0.7, r"config.augment.hue: must be in \[0, 0.5\]"),
    ("augment.jitter_prob", 1.5, r"config.augment.jitter_prob: must be in \[0, 1\], got 1.5"),
    ("augment.blur_prob", -0.5, r"config.augment.blur_prob: must be in \[0, 1\]"),
    ("augment.blur_sigma_max", 0.05, "config.augment.blur_sigma_min: need 0 < blur_sigma_min"),
    ("augment.erase_prob", 2.0, r"config.augment.erase_prob: must be in \[0, 1\], got 2.0"),
    ("augment.erase_scale", (0.4, 0.2), r"config.augment.erase_scale: need \(low, high\) with "
                                        r"0 < low <= high <= 1, got \(0.4, 0.2\)"),
    ("augment.erase_ratio", (0.3,), r"config.augment.erase_ratio: need \(low, high\)"),
])
def test_bad_values_name_the_key(key, value, match):
    cfg = base_config()
    section, name = key.split(".")
    setattr(cfg[section], name, value)
    with pytest.raises(ConfigError, match=match):
        validate(cfg, rules=(dataset_rules,))


def test_cross_field_limits():
    cfg = base_config()
    cfg.train.batch_size = 255
    with pytest.raises(ConfigError, match="not divisible by the 2 replicas"):
        validate(cfg, num_replicas=2)
    cfg = base_config()
    cfg.train.batch_size, cfg.train.steps_per_epoch = 50, 31
    with pytest.raises(ConfigError, match="train.steps_per_epoch: 31 steps of 50 exceed one "
                                          "pass over the 1500 training examples; use at most 30"):
        validate(cfg, num_instances=1500)


def test_eval_batch_must_split_over_the_replicas():
    cfg = base_config()
    cfg.train.batch_size, cfg.eval.batch_size = 256, 512
    validate(cfg, num_replicas=4)
    cfg.eval.batch_size = 510
    with pytest.raises(ConfigError, match="config.eval.batch_size: 510 is not divisible by the "
                                          "4 replicas"):
        validate(cfg, num_replicas=4)


def test_unknown_keys_are_rejected():
    cfg = base_config()
    with pytest.raises(AttributeError):
        cfg.instdisc.temprature = 0.1  # noqa: B018 - a typo must not pass silently
