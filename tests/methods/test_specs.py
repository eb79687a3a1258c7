"""Every method's declaration: each shipped config loads, validates and builds its model
with every variable in its checkpoint; each method's config rules name their key."""

import glob
import inspect
import os

import keras
import pytest
import tensorflow as tf

from tests.helpers import ROOT, smoke_cfg
from tf_contrastive import methods
from tf_contrastive.core import views
from tf_contrastive.core.config import ConfigError, base_config
from tf_contrastive.data.pipeline import DatasetInfo
from tf_contrastive.methods import (
    METHODS,
    ContrastiveModel,
    InstDisc,
    get_method,
    other_sections,
    validate,
)

CONFIGS = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
    if not os.path.basename(p).startswith("_")
)
# What each dataset family yields (its DatasetInfo.source) and its images' channels.
_SOURCES = {"multiview": views.NAMED_VIEWS, "audio": views.WAVEFORM}
_CHANNELS = {"imagenet": 3, "cifar10": 3, "cifar100": 3, "stl10": 3}


def _info(cfg, num_train=None, channels=None):
    """A DatasetInfo as ``pipeline.describe`` gives it for ``cfg``'s dataset, without the
    data: N just above the largest K of the configured bank method (a small bank)."""
    ds = cfg.dataset
    source = _SOURCES.get(ds.name, views.IMAGE)
    if source == views.WAVEFORM:
        shape, c = (ds.audio_window,), 1
    else:
        c = channels or (
            int(ds.view_channels[0]) if source == views.NAMED_VIEWS else _CHANNELS.get(ds.name, 1)
        )
        shape = (ds.image_size, ds.image_size, c)
    section = cfg[get_method(cfg.method).section]
    n = num_train or max(
        int(section.get("num_negatives", 0)) + 1,
        cfg.train.batch_size,
        cfg.train.steps_per_epoch * cfg.train.batch_size,
    )
    return DatasetInfo(n, 10, 10, shape, (0.5,) * c, (0.25,) * c, source=source)


def checkpoint_misses(model, extra=()) -> list[str]:
    """Names of the model's weights (and of ``extra`` variables) that tf.train.Checkpoint
    would not save."""
    root = tf.train.Checkpoint(model=model)  # the view holds only a weak reference
    found = {id(obj) for obj in tf.train.TrackableView(root).descendants()}
    return [
        w.path
        for w in [*model.weights, *extra]
        if id(w) not in found and id(getattr(w, "value", None)) not in found
    ]


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_validates_and_builds_a_model_whose_state_is_all_checkpointed(name):
    cfg = smoke_cfg(name)
    assert set(cfg.keys()) == set(base_config().keys())
    info = _info(cfg)
    validate(cfg, info)
    spec = get_method(cfg.method)
    assert spec.views(cfg, info).source == info.source
    keras.utils.set_random_seed(0)
    model = spec.build(cfg, info)
    assert model.weights and checkpoint_misses(model) == []
    # The online probe's classifier and optimizer slots are checkpointed, not trained by
    # the method's optimizer.
    probe = model.attach_online_probe(info.num_classes)
    probe_vars = [*probe.classifier.weights, *probe.optimizer.variables]
    assert len(probe.optimizer.variables) >= 3  # at least the step count and two slots
    assert checkpoint_misses(model, probe_vars) == []
    assert not {id(v) for v in probe_vars} & {id(v) for v in model.trainable_variables}
    if info.source != views.WAVEFORM:
        assert model.encoder(tf.zeros((1, *info.image_shape))).shape[-1] > 0
    keras.backend.clear_session()


def test_a_layer_kept_only_in_a_list_is_caught():
    class Forgetful(InstDisc):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            extra = keras.layers.Dense(2, name="extra")
            extra.build((None, 3))
            self.extras = [extra]  # not through track(): invisible to tf.train.Checkpoint

    enc = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    model = Forgetful(enc, 10, num_negatives=4)
    assert sorted(checkpoint_misses(model)) == ["extra/bias", "extra/kernel"]
    model.extras = model.track("extra", model.extras)
    assert checkpoint_misses(model) == []


def test_the_registry_is_one_spec_per_method_with_its_own_section():
    sections = [spec.section for spec in METHODS.values()]
    assert len(set(sections)) == len(sections) and set(sections) <= set(base_config().keys())
    assert other_sections("cpc_audio") == (
        "cmc", "cpc_image", "instdisc", "invaspread", "moco", "simclr")
    with pytest.raises(ConfigError, match=r"config.method: 'byol' is not one of \('instdisc'"):
        get_method("byol")


_MODELS = [c for c in vars(methods).values()
           if isinstance(c, type) and issubclass(c, ContrastiveModel)]


@pytest.mark.parametrize("cls", _MODELS, ids=lambda c: c.__name__)
def test_every_method_function_converts_with_autograph(cls):
    # keras traces train_step with AutoGraph, and it reaches every hook (after_step, ...).
    # A function that fails to convert runs as plain Python and logs a warning; the
    # base's docstring-only after_step did, for each method without its own.
    for name, fn in vars(cls).items():
        if inspect.isfunction(fn) and not name.startswith("__"):
            tf.autograph.to_graph(fn)


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("instdisc.temperature", 0.0, "config.instdisc.temperature: must be > 0, got 0.0"),
        (
            "instdisc.loss",
            "hinge",
            r"config.instdisc.loss: 'hinge' is not one of \('nce', 'softmax'\)",
        ),
        ("cmc.loss", "hinge", "config.cmc.loss: 'hinge'"),
        (
            "instdisc.num_negatives",
            0,
            r"config.instdisc.num_negatives: must be >= 1 \(or 0 = all N bank rows, with "
            r"instdisc.loss='softmax'\), got 0 with loss 'nce'",
        ),
        ("cmc.num_negatives", -1, r"config.cmc.num_negatives: must be >= 1 \(or 0"),
        ("cmc.z_momentum", 1.5, r"cmc.z_momentum: must be in \[0, 1\), got 1.5"),
        ("cmc.z_momentum", -0.1, "cmc.z_momentum"),
        ("cmc.views", "hsv", r"config.cmc.views: 'hsv' is not one of \('lab', 'ycbcr', "),
        ("cmc.objective", "star", "config.cmc.objective: 'star'"),
        ("invaspread.temperature", -1.0, "config.invaspread.temperature"),
        ("simclr.temperature", 0.0, "config.simclr.temperature: must be > 0, got 0.0"),
        ("cpc.negatives", "random", "config.cpc.negatives: 'random'"),
        ("cpc.enc_kernels", (10, 8), "config.cpc.enc_strides"),
        ("model.backbone", "vgg", r"config.model.backbone: 'vgg' is not one of \('resnet18_cifar'"),
        (
            "optimizer.name",
            "adagrad",
            r"config.optimizer.name: 'adagrad' is not one of "
            r"\('sgd', 'adamw', 'adam', 'lars'\)",
        ),
        ("model.head", "deep", r"config.model.head: 'deep' is not one of \('linear', 'mlp'\)"),
        ("model.head_hidden", -1, "config.model.head_hidden: must be >= 0"),
        ("method", "byol", "config.method: 'byol'"),
        ("probe.online_lr", 0.0, "config.probe.online_lr: must be > 0, got 0.0"),
        ("probe.online_momentum", 1.0, r"config.probe.online_momentum: must be in \[0, 1\)"),
    ],
)
def test_every_section_is_checked_whichever_method_runs(key, value, match):
    cfg = base_config()  # method instdisc: the other sections are checked too
    *section, name = key.split(".")
    (cfg[section[0]] if section else cfg)[name] = value
    with pytest.raises(ConfigError, match=match):
        validate(cfg)


def test_bank_methods_need_fewer_negatives_than_instances():
    cfg = base_config()
    with pytest.raises(
        ConfigError,
        match="config.instdisc.num_negatives: K=4096 must be < N=1000 training examples",
    ):
        validate(cfg, _info(cfg, num_train=1000))
    cfg.method = "cmc"
    cfg.cmc.views = "intensity_gradient"
    with pytest.raises(ConfigError, match="config.cmc.num_negatives: K=16384 must be < N=1000"):
        validate(cfg, _info(cfg, num_train=1000))
    cfg.cmc.loss, cfg.cmc.num_negatives = "softmax", 0  # every row of the bank
    validate(cfg, _info(cfg, num_train=1000))


@pytest.mark.parametrize("split,channels", [("lab", 1), ("ycbcr", 1), ("intensity_gradient", 3)])
def test_cmc_channel_split_must_fit_the_images(split, channels):
    cfg = base_config()
    cfg.method, cfg.cmc.views = "cmc", split
    validate(cfg)  # no data known: nothing to check
    with pytest.raises(
        ConfigError,
        match=f"config.cmc.views: '{split}' splits .*-channel "
        f"images, the fashion_mnist images have {channels} "
        "channel",
    ):
        validate(cfg, _info(cfg, channels=channels))
    validate(cfg, _info(cfg, channels=4 - channels))


def test_a_method_trains_only_on_the_data_it_declares():
    cfg = base_config()
    cfg.method = "cpc_audio"
    with pytest.raises(
        ConfigError,
        match="config.dataset.name: method 'cpc_audio' trains on "
        "waveform data; the 'fashion_mnist' dataset yields "
        "image data",
    ):
        validate(cfg, _info(cfg))
    cfg.method, cfg.dataset.name = "instdisc", "audio"
    with pytest.raises(
        ConfigError,
        match=r"yields waveform data \(methods for it: "
        r"\['cpc_audio'\]\)",
    ):
        validate(cfg, _info(cfg))
    cfg.method, cfg.dataset.name = "cmc", "multiview"
    cfg.cmc.warm_start = True
    with pytest.raises(ConfigError, match="config.cmc.warm_start: is for the channel-split"):
        validate(cfg, _info(cfg))


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda c: setattr(c.dataset, "audio_window", 20100), "dataset.audio_window"),
        (lambda c: setattr(c.cpc, "prediction_steps", 128), "dataset.audio_window"),
    ],
)
def test_cpc_audio_window_must_fit_the_encoder(edit, match):
    cfg = base_config()
    cfg.method, cfg.dataset.name = "cpc_audio", "audio"
    validate(cfg, _info(cfg))
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
