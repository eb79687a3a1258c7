"""Methods: one keras.Model subclass per file, looked up by name in METHODS."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from tf_contrastive.methods.instdisc import InstDisc
from tf_contrastive.methods.invaspread import InvaSpread


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


def _build_invaspread(cfg, encoder: keras.Model, num_instances: int) -> keras.Model:
    del num_instances  # no memory bank
    return InvaSpread(encoder, temperature=cfg.invaspread.temperature, name="invaspread")


METHODS = {
    "instdisc": MethodSpec(_build_instdisc, view_kind="single", has_bank=True),
    "invaspread": MethodSpec(_build_invaspread, view_kind="pair", has_bank=False),
}


def get_method(name: str) -> MethodSpec:
    """The spec for ``name``; an unknown name lists the known ones."""
    if name not in METHODS:
        raise ValueError(f"config.method: unknown method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name]
