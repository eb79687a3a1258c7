"""CPC on raw audio (van den Oord, Li, Vinyals 2018).

g_enc maps a waveform window to latents z_t (one per 10 ms), the GRU g_ar
summarises z_<=t into c_t, and W_k c_t scores z_{t+k} against the other
latents of the batch (:func:`tf_contrastive.losses.infonce.cpc_loss`) for
k = 1..K. ``encoder`` (waveform -> unit-norm mean-pooled c_t) is what kNN,
probes and the exported model use.

Batch dict consumed: ``waveform`` float32 [B, L] in about [-1, 1].
Distribution rule: with ``global_negatives`` (the default) the candidates are
the latents of the whole global batch, gathered from every replica (the
gather passes gradients back to the replica that computed them), so N
replicas train exactly like one device with the same global batch; without
it, negatives come from this replica's batch only, as in the paper (8 windows
per GPU). Loss scaling: the template's (``methods/base.py``).

Exported (``export``): float waveforms in; embeddings, pooled features and the
z_t / c_t sequences out. ``frame_features`` (c_t) feeds the frame-level phone probe.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.core import views
from tf_contrastive.core.config import ConfigError
from tf_contrastive.core.export import export_audio_encoder
from tf_contrastive.core.fingerprint import SHAPES_REASON
from tf_contrastive.losses.infonce import NEGATIVES, cpc_loss
from tf_contrastive.methods.base import ContrastiveModel, MethodSpec, Step, candidates_of
from tf_contrastive.models import cpc
from tf_contrastive.models.cpc import StepPredictors, build_audio_embedding
from tf_contrastive.models.encoder import backbone_of


class CPCAudio(ContrastiveModel):
    """g_enc + g_ar + W_1..W_K trained with InfoNCE by ``fit``."""

    def __init__(self, g_enc: keras.Model, g_ar: keras.Model, prediction_steps: int = 12,
                 negatives: str = "all", global_negatives: bool = True, **kwargs):
        _check_negatives(negatives)
        steps = int(prediction_steps)
        names = ("loss", "accuracy", *(f"accuracy_k{k}" for k in range(1, steps + 1)))
        super().__init__(build_audio_embedding(g_enc, g_ar), names, **kwargs)
        self.g_enc, self.g_ar = g_enc, g_ar
        self.negatives, self.steps = negatives, steps
        self.global_negatives = bool(global_negatives)
        self.predictors = StepPredictors(steps, g_enc.output_shape[-1], name="w_k",
                                         dtype="float32")
        self.predictors.build((None, g_ar.output_shape[-1]))

    def contrastive_loss(self, waveform: tf.Tensor, training: bool):
        z = tf.cast(self.g_enc(waveform, training=training), tf.float32)
        c = tf.cast(self.g_ar(z, training=training), tf.float32)
        if z.shape[1] is not None and z.shape[1] <= self.steps:
            raise ValueError(f"a window of {waveform.shape[1]} samples gives {z.shape[1]} "
                             f"frames, too few for cpc.prediction_steps={self.steps}")
        candidates, first = candidates_of(z, self.global_negatives)
        return cpc_loss(z, c, self.predictors.kernel, self.negatives, candidates, first)

    def _accuracies(self, acc):
        return {"accuracy": tf.reduce_mean(acc),
                **{f"accuracy_k{k + 1}": acc[k] for k in range(self.steps)}}

    def step_loss(self, data, training):
        loss, acc = self.contrastive_loss(data["waveform"], training=training)
        return Step(loss, self._accuracies(acc))

    def test_step(self, data):
        loss, acc = self.contrastive_loss(data["waveform"], training=False)
        return self.report(loss=loss, **self._accuracies(acc))

    def frame_features(self, waveform: tf.Tensor) -> tf.Tensor:
        """c_t [B, T, C] of each 10 ms frame, for frame-level probes."""
        return self.g_ar(self.g_enc(waveform, training=False), training=False)

    def export(self, export_root, input_shape, jpeg_view=None) -> str:
        return export_audio_encoder(self.encoder, self.g_enc, self.g_ar,
                                    backbone_of(self.encoder), export_root)


def _check_negatives(negatives: str) -> None:
    if negatives not in NEGATIVES:
        raise ConfigError(f"config.cpc.negatives: {negatives!r} is not one of {NEGATIVES}")


def build(cfg, info) -> CPCAudio:
    d = cfg.cpc
    g_enc = cpc.build_audio_encoder(d.enc_channels, d.enc_strides, d.enc_kernels)
    g_ar = cpc.build_audio_context(d.enc_channels, d.context_units)
    return CPCAudio(g_enc, g_ar, prediction_steps=d.prediction_steps, negatives=d.negatives,
                    global_negatives=d.global_negatives, name="cpc_audio")


def section_rules(cfg) -> None:
    p = cfg.cpc
    _check_negatives(p.negatives)
    if len(p.enc_strides) != len(p.enc_kernels) or not p.enc_strides:
        raise ConfigError(f"config.cpc.enc_strides: {p.enc_strides} and cpc.enc_kernels "
                          f"{p.enc_kernels} need the same, non-zero length")
    if p.prediction_steps < 1:
        raise ConfigError(f"config.cpc.prediction_steps: must be >= 1, got {p.prediction_steps}")


def rules(cfg, info=None) -> None:
    p = cfg.cpc
    hop = 1
    for s in p.enc_strides:
        hop *= int(s)
    window = cfg.dataset.audio_window
    if window % hop or window // hop <= p.prediction_steps:
        raise ConfigError(f"config.dataset.audio_window: {window} samples must be a multiple "
                          f"of the encoder hop {hop} and give more than "
                          f"cpc.prediction_steps={p.prediction_steps} frames")


_SHAPE_KEYS = tuple(f"cpc.{k}" for k in ("enc_channels", "enc_strides", "enc_kernels",
                                        "context_units", "prediction_steps"))

SPEC = MethodSpec(build, section="cpc", views=lambda cfg, info: views.WAVEFORM_WINDOW,
                  sources=(views.WAVEFORM,), section_rules=section_rules, rules=rules,
                  refusal=lambda key, old, new: SHAPES_REASON if key in _SHAPE_KEYS else None)
