"""Every config file loads and validates; bad values fail naming the key."""

import glob
import importlib.util
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


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_loads_and_validates(path):
    spec = importlib.util.spec_from_file_location("cfg", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = module.get_config()
    validate(cfg, rules=(dataset_rules,))
    assert set(cfg.keys()) == set(base_config().keys())


@pytest.mark.parametrize("key,value,match", [
    ("instdisc.temperature", 0.0, "instdisc.temperature"),
    ("instdisc.loss", "hinge", "instdisc.loss"),
    ("dataset.name", "cifar", "dataset.name"),
    ("model.backbone", "vgg", "model.backbone"),
    ("augment.crop_scale_min", 1.5, "augment.crop_scale_min"),
    ("train.batch_size", 0, "train.batch_size"),
    ("eval.knn_sigma", -1.0, "eval.knn_sigma"),
    ("optimizer.name", "adagrad", "config.optimizer.name: 'adagrad' is not one of "
                                  r"\('sgd', 'adamw', 'adam'\)"),
    ("optimizer.momentum", 1.0, r"optimizer.momentum: must be in \[0, 1\), got 1.0"),
    ("cmc.z_momentum", 1.5, r"cmc.z_momentum: must be in \[0, 1\), got 1.5"),
    ("cmc.z_momentum", -0.1, "cmc.z_momentum"),
    ("eval.batch_size", 0, "eval.batch_size: must be >= 1"),
])
def test_bad_values_name_the_key(key, value, match):
    cfg = base_config()
    section, name = key.split(".")
    setattr(cfg[section], name, value)
    with pytest.raises(ConfigError, match=match):
        validate(cfg, rules=(dataset_rules,))


def test_cross_field_limits():
    cfg = base_config()
    with pytest.raises(ConfigError, match="num_negatives.*K=4096 must be < N=1000"):
        validate(cfg, num_instances=1000)
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


@pytest.mark.parametrize("views,channels", [("lab", 1), ("ycbcr", 1), ("intensity_gradient", 3)])
def test_cmc_channel_split_must_fit_the_images(views, channels):
    cfg = base_config()
    cfg.method, cfg.cmc.views = "cmc", views
    validate(cfg)  # channels unknown: nothing to check
    with pytest.raises(ConfigError, match=f"config.cmc.views: '{views}' splits .*-channel "
                                          f"images, the fashion_mnist images have {channels} "
                                          "channel"):
        validate(cfg, image_channels=channels)
    validate(cfg, image_channels=4 - channels)


def test_unknown_keys_are_rejected():
    cfg = base_config()
    with pytest.raises(AttributeError):
        cfg.instdisc.temprature = 0.1  # noqa: B018 - a typo must not pass silently


def _cpc_audio():
    cfg = base_config()
    cfg.method, cfg.dataset.name = "cpc_audio", "audio"
    return cfg


@pytest.mark.parametrize("edit,match", [
    (lambda c: setattr(c.cpc, "negatives", "random"), "cpc.negatives"),
    (lambda c: setattr(c.cpc, "enc_kernels", (10, 8)), "cpc.enc_strides"),
    (lambda c: setattr(c.dataset, "audio_window", 20100), "dataset.audio_window"),
    (lambda c: setattr(c.cpc, "prediction_steps", 128), "dataset.audio_window"),
    (lambda c: setattr(c.dataset, "name", "fashion_mnist"), "dataset.name"),
])
def test_cpc_audio_limits_name_the_key(edit, match):
    cfg = _cpc_audio()
    validate(cfg)
    edit(cfg)
    with pytest.raises(ConfigError, match=match):
        validate(cfg)


def test_cpc_image_grid_must_exceed_the_prediction_horizon():
    cfg = base_config()
    cfg.method = "cpc_image"
    validate(cfg)  # 28 px, 8 px patches, stride 4: 6 rows
    cfg.cpc_image.prediction_steps = 6
    with pytest.raises(ConfigError, match="the patches give 6"):
        validate(cfg)
    cfg.cpc_image.prediction_steps, cfg.cpc_image.directions = 2, 3
    with pytest.raises(ConfigError, match="cpc_image.directions"):
        validate(cfg)
    cfg = base_config()
    cfg.dataset.name = "audio"
    with pytest.raises(ConfigError, match="audio records are for method 'cpc_audio'"):
        validate(cfg)
