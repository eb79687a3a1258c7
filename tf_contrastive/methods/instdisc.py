"""InstDisc: non-parametric instance discrimination (Wu, Xiong, Yu, Lin; CVPR 2018).

Each training image is its own class. Its 128-d L2-normalised feature f is
scored against a memory bank holding one feature per image: the positive is
the image's own row, the negatives are K rows drawn uniformly. The loss is NCE
(:mod:`tf_contrastive.losses.nce`, with the normaliser Z estimated on the first
batch and frozen) or the sampled softmax variant, or with K = 0 the full softmax
over all N rows (the paper's eq. 2; lemniscate.pytorch's CIFAR recipe); after each
step the batch's rows are moved towards the new features with momentum m (the bank is read
before it is written, as in the reference code). Scoring, Z and the bank update
are the shared :class:`~tf_contrastive.methods.bank_objective.BankObjective`.

Batch dict consumed: ``image`` [B, H, W, C] in [0, 1], ``index`` [B] instance
ids, optional ``label`` [B] (kept beside the bank for the kNN monitor).

Distribution rule: the template's (``methods/base.py``): the local mean divided by
``num_replicas_in_sync``, gradients summed. Noise ids are drawn for the whole global
batch from a stateless seed of (config seed, step) and each replica takes its own
rows, so N replicas draw exactly what one device would for the same global batch.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.core import views
from tf_contrastive.memory import MemoryBank
from tf_contrastive.methods import bank_objective
from tf_contrastive.methods.bank_objective import BankObjective
from tf_contrastive.methods.base import (
    ContrastiveModel,
    MethodSpec,
    Step,
    encode_rows,
    image_encoder,
)


class InstDisc(ContrastiveModel):
    """Encoder + memory bank + NCE/softmax objective, trained by ``fit``."""

    def __init__(self, encoder: keras.Model, num_instances: int, num_negatives: int = 4096,
                 temperature: float = 0.07, momentum: float = 0.5, loss: str = "nce",
                 shared_negatives: bool = False, z_momentum: float = 0.0, seed: int = 0,
                 **kwargs):
        super().__init__(encoder, ("loss", "pos_sim", "neg_sim"), **kwargs)
        self.objective = BankObjective(num_instances, num_negatives, temperature, momentum,
                                       loss, z_momentum, shared_negatives, seed, "instdisc")
        self.bank = MemoryBank(num_instances, encoder.output_shape[-1], seed=seed, name="bank")
        # Z < 0 means "not estimated yet"; it is checkpointed with the model.
        self.z = self.add_weight(shape=(), initializer=keras.initializers.Constant(-1.0),
                                 trainable=False, aggregation="only_first_replica", name="z")

    def noise_ids(self, local_batch: tf.Tensor, step: tf.Tensor) -> tf.Tensor | None:
        """[B, K] noise ids for this replica ([1, K] when negatives are shared; None when
        ``num_negatives`` is 0: the softmax over every bank row)."""
        return self.objective.noise_ids(self.bank, local_batch, step)

    def step_loss(self, data, training):
        ids = data["index"]
        noise = self.noise_ids(tf.shape(ids)[0], self.optimizer.iterations)
        feats = self.encoder(data["image"], training=training)
        loss, z, pos_sim, neg_sim = self.objective.score(self.bank, feats, ids, noise,
                                                         self.z.value)
        return Step(loss, {"pos_sim": pos_sim, "neg_sim": neg_sim}, {"feats": feats, "z": z})

    def after_step(self, data, step):
        if step.state["z"] is not None:
            self.z.assign(step.state["z"])
        self.objective.update(self.bank, data["index"], step.state["feats"], data.get("label"))

    def monitor_scalars(self) -> dict[str, tf.Tensor]:
        return {"nce/Z": self.z.value} if self.objective.uses_z else {}

    def monitored_banks(self) -> list:
        return [self.bank]

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


def build(cfg, info) -> InstDisc:
    d = cfg.instdisc
    return InstDisc(image_encoder(cfg, info), info.num_train, num_negatives=d.num_negatives,
                    temperature=d.temperature, momentum=d.momentum, loss=d.loss,
                    shared_negatives=d.shared_negatives, z_momentum=d.z_momentum,
                    seed=cfg.seed, name="instdisc")


SPEC = MethodSpec(
    build, section="instdisc",
    views=lambda cfg, info: views.SINGLE,
    section_rules=lambda cfg: bank_objective.check_section(cfg, "instdisc"),
    rules=lambda cfg, info=None: bank_objective.check_negatives(cfg, "instdisc", info),
    warm_start=lambda cfg: bool(cfg.instdisc.warm_start),
    refusal=lambda key, old, new: bank_objective.z_refusal("instdisc", key, old, new))
