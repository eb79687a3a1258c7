"""Methods: one keras.Model subclass per file, looked up by name in METHODS."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from tf_contrastive.methods.instdisc import InstDisc


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """How to build a method and which batch-dict views it consumes."""

    build: Callable[..., keras.Model]
    view_kind: str
    has_bank: bool


def _build_instdisc(cfg, encoder: keras.Model, num_instances: int) -> keras.Model:
    d = cfg.instdisc
    return InstDisc(encoder, num_instances, num_negatives=d.num_negatives,
                    temperature=d.temperature, momentum=d.momentum, loss=d.loss,
                    shared_negatives=d.shared_negatives, z_momentum=d.z_momentum,
                    seed=cfg.seed, name="instdisc")


METHODS = {
    "instdisc": MethodSpec(_build_instdisc, view_kind="single", has_bank=True),
}


def get_method(name: str) -> MethodSpec:
    """The spec for ``name``; an unknown name lists the known ones."""
    if name not in METHODS:
        raise ValueError(f"config.method: unknown method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name]
