"""Methods: one file per method, each declaring a ``SPEC``, registered one line each in METHODS.

The classes are also the Python API: ``InstDisc(encoder=..., num_instances=N)``,
``InvaSpread(encoder=...)``, ``CMC(view_encoders={...}, encoder=..., num_instances=N)``,
``CPCAudio(g_enc, g_ar)``, ``CPCImage(...)``, ``MoCo(encoder=...)``,
``SimCLR(encoder=...)``; ``compile(optimizer=...)`` and ``fit`` on a tf.data dataset
of the batch dict each class's module documents (README,
"Python API"). What a method file declares: ``methods/base.py``.

:func:`validate` is the whole config check of a training run: the schema's own rules
(``core.config.validate``), the names owned above ``core`` (method, backbone, head) and
every method's section rules, then the configured method's rules against the data.
It lives here, not in ``core``, because ``core`` imports nothing above it.
"""

from __future__ import annotations

import ml_collections

from tf_contrastive.core import config as config_lib
from tf_contrastive.core.config import ConfigError
from tf_contrastive.methods import (
    cmc,
    cpc_audio,
    cpc_image,
    instdisc,
    invaspread,
    moco,
    simclr,
)
from tf_contrastive.methods.base import ContrastiveModel, MethodSpec
from tf_contrastive.methods.cmc import CMC
from tf_contrastive.methods.cpc_audio import CPCAudio
from tf_contrastive.methods.cpc_image import CPCImage
from tf_contrastive.methods.instdisc import InstDisc
from tf_contrastive.methods.invaspread import InvaSpread
from tf_contrastive.methods.moco import MoCo
from tf_contrastive.methods.simclr import SimCLR
from tf_contrastive.models.encoder import HEADS
from tf_contrastive.models.resnet import BACKBONES

__all__ = ["CMC", "CPCAudio", "CPCImage", "ContrastiveModel", "InstDisc", "InvaSpread",
           "METHODS", "MethodSpec", "MoCo", "SimCLR", "get_method", "other_sections",
           "validate"]

METHODS: dict[str, MethodSpec] = {
    "instdisc": instdisc.SPEC,
    "invaspread": invaspread.SPEC,
    "cmc": cmc.SPEC,
    "cpc_audio": cpc_audio.SPEC,
    "cpc_image": cpc_image.SPEC,
    "moco": moco.SPEC,
    "simclr": simclr.SPEC,
}


def get_method(name: str) -> MethodSpec:
    """The spec for ``name``; an unknown name lists the known ones."""
    if name not in METHODS:
        raise ConfigError(f"config.method: {name!r} is not one of {tuple(METHODS)}")
    return METHODS[name]


def other_sections(name: str) -> tuple[str, ...]:
    """The config sections of every method but ``name`` (not part of its run's state)."""
    own = get_method(name).section
    return tuple(sorted({spec.section for spec in METHODS.values()} - {own}))


def validate(cfg: ml_collections.ConfigDict, info=None, num_replicas: int = 1,
             rules=()) -> None:
    """Every rule of ``cfg``, before any file is written; raises ConfigError naming the key.

    ``info``: the dataset's ``DatasetInfo`` when known (training examples, input shape,
    what the dataset yields); without it only what the config alone decides is checked.
    ``rules``: the data side's checks (``data.pipeline.check_config``), which methods
    cannot import; passed on to ``core.config.validate``.
    """
    spec = get_method(cfg.method)
    if cfg.model.backbone not in BACKBONES:
        raise ConfigError(f"config.model.backbone: {cfg.model.backbone!r} is not one of "
                          f"{tuple(BACKBONES)}")
    if cfg.model.head not in HEADS:
        raise ConfigError(f"config.model.head: {cfg.model.head!r} is not one of {HEADS}")
    config_lib.validate(cfg, num_instances=None if info is None else info.num_train,
                        num_replicas=num_replicas, rules=rules)
    for other in METHODS.values():
        other.section_rules(cfg)
    if info is not None and info.source not in spec.sources:
        fits = [name for name, s in METHODS.items() if info.source in s.sources]
        raise ConfigError(f"config.dataset.name: method {cfg.method!r} trains on "
                          f"{' or '.join(spec.sources)} data; the {cfg.dataset.name!r} dataset "
                          f"yields {info.source} data (methods for it: {fits})")
    spec.rules(cfg, info)
