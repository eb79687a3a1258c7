"""Methods: one keras.Model subclass per file, looked up by name in METHODS.

The classes are also the Python API: ``InstDisc(encoder=..., num_instances=N)``,
``InvaSpread(encoder=...)``, ``CMC(view_encoders={...}, encoder=..., num_instances=N)``,
``CPCAudio(g_enc, g_ar)``, ``CPCImage(...)``; ``compile(optimizer=...)`` and ``fit``
on a tf.data dataset of the batch dict each class's module documents (README,
"Python API").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from tf_contrastive.core import views
from tf_contrastive.methods.cmc import CMC
from tf_contrastive.methods.cpc_audio import CPCAudio
from tf_contrastive.methods.cpc_image import DIRECTIONS, CPCImage
from tf_contrastive.methods.instdisc import InstDisc
from tf_contrastive.methods.invaspread import InvaSpread
from tf_contrastive.models import cpc
from tf_contrastive.models.encoder import build_encoder, build_multiview_encoder

__all__ = ["CMC", "CPCAudio", "CPCImage", "InstDisc", "InvaSpread", "METHODS", "MethodSpec",
           "get_method"]

# Input normalisation of CMC's split views, which are scaled to about [0, 1].
VIEW_MEAN, VIEW_STD = 0.5, 0.25


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """How to build a method from (cfg, dataset info) and which views it consumes."""

    build: Callable[..., keras.Model]
    views: Callable[..., views.ViewSpec]  # (cfg, dataset info) -> the training batches' views
    has_bank: bool


def _encoder(cfg, info, shape=None, mean=None, std=None, name="encoder"):
    return build_encoder(shape or info.image_shape, cfg.model.backbone, cfg.model.width,
                         cfg.model.embedding_dim, mean or info.mean, std or info.std, name=name,
                         sync_bn=cfg.model.sync_bn)


def _build_instdisc(cfg, info) -> keras.Model:
    d = cfg.instdisc
    return InstDisc(_encoder(cfg, info), info.num_train, num_negatives=d.num_negatives,
                    temperature=d.temperature, momentum=d.momentum, loss=d.loss,
                    shared_negatives=d.shared_negatives, z_momentum=d.z_momentum,
                    seed=cfg.seed, name="instdisc")


def _build_invaspread(cfg, info) -> keras.Model:
    return InvaSpread(_encoder(cfg, info), temperature=cfg.invaspread.temperature,
                      name="invaspread")


def _cmc_views(cfg) -> list[tuple[str, int]]:
    """(batch key, channels) of each view."""
    if cfg.dataset.name == "multiview":
        return [(f"view_{n}", int(c)) for n, c in zip(cfg.dataset.view_names,
                                                      cfg.dataset.view_channels, strict=True)]
    return [("view_l", 1), ("view_ab", 2)]


def _build_cmc(cfg, info) -> keras.Model:
    d = cfg.cmc
    h, w, _ = info.image_shape
    views = {}
    for key, channels in _cmc_views(cfg):
        views[key] = _encoder(cfg, info, (h, w, channels), [VIEW_MEAN] * channels,
                              [VIEW_STD] * channels, name=f"encoder_{key}")
    if cfg.dataset.name == "multiview":
        combined = next(iter(views.values()))  # the core view's encoder
    else:
        combined = build_multiview_encoder(info.image_shape, d.views, list(views.values()))
    return CMC(views, combined, info.num_train, num_negatives=d.num_negatives,
               temperature=d.temperature, momentum=d.momentum, loss=d.loss,
               objective=d.objective, z_momentum=d.z_momentum,
               shared_negatives=d.shared_negatives, seed=cfg.seed, name="cmc")


def _build_cpc_audio(cfg, info) -> keras.Model:
    d = cfg.cpc
    g_enc = cpc.build_audio_encoder(d.enc_channels, d.enc_strides, d.enc_kernels)
    g_ar = cpc.build_audio_context(d.enc_channels, d.context_units)
    return CPCAudio(g_enc, g_ar, prediction_steps=d.prediction_steps, negatives=d.negatives,
                    global_negatives=d.global_negatives, name="cpc_audio")


def _build_cpc_image(cfg, info) -> keras.Model:
    d = cfg.cpc_image
    channels = info.image_shape[-1]
    patch_encoder = cpc.build_patch_encoder((d.patch_size, d.patch_size, channels), info.mean,
                                            info.std, width=cfg.model.width)
    embedding = cpc.build_patch_embedding(patch_encoder, info.image_shape, d.patch_size,
                                          d.patch_stride)
    contexts = {direction: cpc.build_grid_context(patch_encoder.output_shape[-1],
                                                  d.feature_dim, d.context_layers,
                                                  name=f"context_{direction}")
                for direction in DIRECTIONS[d.directions]}
    return CPCImage(embedding, patch_encoder, contexts, prediction_steps=d.prediction_steps,
                    global_negatives=d.global_negatives, name="cpc_image")


def _cmc_view_spec(cfg, info) -> views.ViewSpec:
    if info.source == views.NAMED_VIEWS:
        return views.DATASET_VIEWS
    return views.channel_split(cfg.cmc.views, cfg.cmc.same_crop, cfg.cmc.jitter)


def _cpc_image_view_spec(cfg, info) -> views.ViewSpec:
    d = cfg.cpc_image
    return views.patch_grid(d.patch_size, d.patch_stride, d.patch_jitter)


METHODS = {
    "instdisc": MethodSpec(_build_instdisc, lambda cfg, info: views.SINGLE, has_bank=True),
    "invaspread": MethodSpec(_build_invaspread, lambda cfg, info: views.PAIR, has_bank=False),
    "cmc": MethodSpec(_build_cmc, _cmc_view_spec, has_bank=True),
    "cpc_audio": MethodSpec(_build_cpc_audio, lambda cfg, info: views.WAVEFORM_WINDOW,
                            has_bank=False),
    "cpc_image": MethodSpec(_build_cpc_image, _cpc_image_view_spec, has_bank=False),
}


def get_method(name: str) -> MethodSpec:
    """The spec for ``name``; an unknown name lists the known ones."""
    if name not in METHODS:
        raise ValueError(f"config.method: unknown method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name]
