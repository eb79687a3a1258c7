"""InstDisc: non-parametric instance discrimination (Wu, Xiong, Yu, Lin; CVPR 2018).

Each training image is its own class. Its 128-d L2-normalised feature f is
scored against a memory bank holding one feature per image: the positive is
the image's own row, the negatives are K rows drawn uniformly. The loss is NCE
(:mod:`tf_contrastive.losses.nce`, with the normaliser Z estimated on the first
batch and frozen) or the sampled softmax variant; after each step the batch's
rows are moved towards the new features with momentum m (the bank is read
before it is written, as in the reference code).

Batch dict consumed: ``image`` [B, H, W, C] in [0, 1], ``index`` [B] instance
ids, optional ``label`` [B] (kept beside the bank for the kNN monitor).

Distribution rule: each replica's loss is its local mean divided by
``num_replicas_in_sync``; the optimizer sums gradients across replicas. Noise
ids are drawn for the whole global batch from a stateless seed of (config seed,
step) and each replica takes its own rows, so N replicas draw exactly what one
device would for the same global batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.core import distribute
from tf_contrastive.losses.nce import estimate_z, nce_loss, next_z
from tf_contrastive.losses.softmax_bank import softmax_bank_loss
from tf_contrastive.memory import MemoryBank
from tf_contrastive.methods.base import ContrastiveModel, encode_rows


class InstDisc(ContrastiveModel):
    """Encoder + memory bank + NCE/softmax objective, trained by ``fit``."""

    def __init__(self, encoder: keras.Model, num_instances: int, num_negatives: int = 4096,
                 temperature: float = 0.07, momentum: float = 0.5, loss: str = "nce",
                 shared_negatives: bool = False, z_momentum: float = 0.0, seed: int = 0,
                 **kwargs):
        super().__init__(encoder, ("loss", "pos_sim", "neg_sim"), **kwargs)
        if loss not in ("nce", "softmax"):
            raise ValueError(f"config.instdisc.loss: {loss!r} is not one of ('nce', 'softmax')")
        self.num_instances = int(num_instances)
        self.num_negatives = int(num_negatives)
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.loss_kind = loss
        self.shared_negatives = bool(shared_negatives)
        self.z_momentum = float(z_momentum)
        self.seed = int(seed)
        self.bank = MemoryBank(num_instances, encoder.output_shape[-1], seed=seed, name="bank")
        # Z < 0 means "not estimated yet"; it is checkpointed with the model.
        self.z = self.add_weight(shape=(), initializer=keras.initializers.Constant(-1.0),
                                 trainable=False, aggregation="only_first_replica", name="z")

    def noise_ids(self, local_batch: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        """[B, K] noise ids for this replica ([1, K] when negatives are shared)."""
        return self.bank.sample_noise(local_batch, self.num_negatives, self.seed, step,
                                      shared=self.shared_negatives)

    def train_step(self, data):
        images, ids = data["image"], data["index"]
        local_batch = tf.shape(ids)[0]
        noise = self.noise_ids(local_batch, self.optimizer.iterations)
        with tf.GradientTape() as tape:
            feats = self.encoder(images, training=True)
            pos, neg = self.bank.logits(feats, ids, noise, self.temperature)
            if self.loss_kind == "nce":
                z_est = distribute.all_reduce_mean(
                    estimate_z(tf.stop_gradient(pos), tf.stop_gradient(neg), self.num_instances))
                z = next_z(self.z.value, z_est, self.z_momentum)
                loss = nce_loss(pos, neg, z, self.num_instances)
            else:
                loss = softmax_bank_loss(pos, neg)
            scaled = loss / distribute.num_replicas()
        self.apply_gradients_of(scaled, tape)
        if self.loss_kind == "nce":
            self.z.assign(z)
        self.bank.update(ids, feats, self.momentum, labels=data.get("label"))
        return self.report(loss=loss, pos_sim=tf.reduce_mean(pos) * self.temperature,
                           neg_sim=tf.reduce_mean(neg) * self.temperature)

    def monitor_scalars(self) -> dict[str, tf.Tensor]:
        return {"nce/Z": self.z.value} if self.loss_kind == "nce" else {}

    def knn_bank(self) -> tuple[tf.Tensor, tf.Tensor]:
        """(rows, labels) of the bank, for the kNN monitor."""
        return (tf.convert_to_tensor(self.bank.features.value),
                tf.convert_to_tensor(self.bank.labels.value))

    def fill_bank_step(self, data):
        """Overwrites the batch's bank rows with the current encoder's features."""
        (feats,) = encode_rows(data["image"], lambda x: [self.encoder(x, training=False)],
                               [self.encoder])
        self.bank.update(data["index"], feats, momentum=0.0, labels=data.get("label"))
        return tf.shape(feats)[0]
