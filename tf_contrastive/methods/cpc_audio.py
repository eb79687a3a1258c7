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
per GPU). Each replica's loss is divided by the number of replicas, and the
optimizer sums gradients across replicas.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.core import distribute
from tf_contrastive.losses.infonce import NEGATIVES, cpc_loss
from tf_contrastive.methods.base import ContrastiveModel, candidates_of
from tf_contrastive.models.cpc import StepPredictors, build_audio_embedding


class CPCAudio(ContrastiveModel):
    """g_enc + g_ar + W_1..W_K trained with InfoNCE by ``fit``."""

    def __init__(self, g_enc: keras.Model, g_ar: keras.Model, prediction_steps: int = 12,
                 negatives: str = "all", global_negatives: bool = True, **kwargs):
        if negatives not in NEGATIVES:
            raise ValueError(f"config.cpc.negatives: {negatives!r} is not one of {NEGATIVES}")
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

    def _report(self, loss, acc):
        per_k = {f"accuracy_k{k + 1}": acc[k] for k in range(self.steps)}
        return self.report(loss=loss, accuracy=tf.reduce_mean(acc), **per_k)

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, acc = self.contrastive_loss(data["waveform"], training=True)
            share = loss / tf.cast(distribute.num_replicas(), tf.float32)
        self.apply_gradients_of(share, tape)
        return self._report(loss, acc)

    def test_step(self, data):
        loss, acc = self.contrastive_loss(data["waveform"], training=False)
        return self._report(loss, acc)
