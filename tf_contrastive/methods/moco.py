"""MoCo: momentum contrast (He et al., CVPR 2020; v2: Chen et al., arXiv:2003.04297).

Two augmentations of each image: the query view goes through the encoder (q), the
key view through a momentum copy of it (k, no gradient). The key encoder starts as
a copy of the query encoder and after every step follows it as
theta_k <- m * theta_k + (1 - m) * theta_q over the parameters (kernels, biases and
batch-norm gamma/beta); the key encoder's batch-norm moving statistics are its own,
kept by its forward passes in training mode, as the reference code (which averages
``parameters()``, not buffers). The loss is InfoNCE against a queue of the last K
keys (:class:`~tf_contrastive.memory.KeyQueue`):

    logits = [q.k+, q.queue^T] / tau,  loss = cross-entropy with label 0,

:func:`~tf_contrastive.losses.softmax_bank_loss` (the same softmax over one positive
and K negatives as InstDisc's sampled-softmax variant). After the step the batch's
keys enter the queue, replacing its oldest. The reference code runs the momentum
update at the start of the next forward pass: the same sequence of key encoders
(the first update, from a copy, changes nothing).

MoCo v2 is this method with ``model.head="mlp"``, tau 0.2, stronger augmentation
and a cosine schedule: configuration, not code. The symmetric loss is in neither.

**Shuffled BN** (``moco.shuffle_bn``): with N > 1 replicas, the key batch is gathered
from every replica, permuted by a permutation drawn from a stateless seed of
(config seed, step), each replica encodes its slice of the permuted batch (so its
batch-norm statistics mix images from every replica and cannot tell a query's key
by its statistics), and the keys are gathered again and put back in order. With one
replica it is a no-op: there is one batch, and its statistics are shared anyway.

Batch dict consumed: ``view_0`` (queries) and ``view_1`` (keys) [B, H, W, C] in [0, 1].
Distribution rule: the template's (``methods/base.py``): this replica's mean over its
B queries, divided by ``num_replicas_in_sync`` for the gradient. The queue and the key
encoder are written identically on every replica: the queue from the keys of every
replica in replica order, the key encoder from the (mirrored) query weights.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.core import distribute, views
from tf_contrastive.core.config import ConfigError
from tf_contrastive.losses.softmax_bank import softmax_bank_loss
from tf_contrastive.memory import KeyQueue
from tf_contrastive.methods.base import ContrastiveModel, MethodSpec, Step, image_encoder


def moco_logits(
    q: tf.Tensor, k: tf.Tensor, queue: tf.Tensor, temperature: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """(l_pos [B], l_neg [B, K]) = (q_i . k_i, q_i . queue_j) / tau for unit-norm queries
    ``q`` [B, D], their keys ``k`` [B, D] and the queue's keys [K, D]."""
    queue = tf.convert_to_tensor(queue)
    pos = tf.reduce_sum(q * k, axis=1)
    neg = tf.matmul(q, queue, transpose_b=True)
    return pos / temperature, neg / temperature


def momentum_pairs(encoder: keras.Model, key_encoder: keras.Model) -> list[tuple]:
    """(query variable, key variable) for every trainable variable of ``encoder``.

    The two models must be structurally identical (same variables in the same order
    and shapes), as a clone or a second build of the same encoder is.
    """
    q_all, k_all = encoder.weights, key_encoder.weights
    if len(q_all) != len(k_all) or any(
        tuple(q.shape) != tuple(k.shape) for q, k in zip(q_all, k_all, strict=True)
    ):
        raise ValueError(
            f"MoCo: key encoder {key_encoder.name!r} is not structurally "
            f"identical to the encoder {encoder.name!r}"
        )
    return [(q, k) for q, k in zip(q_all, k_all, strict=True) if q.trainable]


class MoCo(ContrastiveModel):
    """Query encoder, momentum key encoder and key queue, trained by ``fit``.

    ``key_encoder``: a structurally identical model (default: a clone of
    ``encoder``); its weights are overwritten with the encoder's here. Its variables
    are not trainable (no optimizer touches them), but its layers stay trainable, so
    its batch norm uses batch statistics in training mode as the reference's does.
    """

    def __init__(
        self,
        encoder: keras.Model,
        queue_size: int = 65536,
        momentum: float = 0.999,
        temperature: float = 0.07,
        shuffle_bn: bool = True,
        seed: int = 0,
        key_encoder: keras.Model | None = None,
        **kwargs,
    ):
        super().__init__(encoder, ("loss", "pos_sim", "neg_sim"), **kwargs)
        self.momentum = float(momentum)
        self.temperature = float(temperature)
        self.shuffle_bn = bool(shuffle_bn)
        self.seed = int(seed)
        if key_encoder is None:
            key_encoder = keras.models.clone_model(encoder)
        self.key_encoder = key_encoder
        momentum_pairs(encoder, key_encoder)  # fails early on a mismatched key encoder
        key_encoder.set_weights(encoder.get_weights())
        for variable in key_encoder.weights:
            variable.trainable = False
        self.queue = KeyQueue(queue_size, encoder.output_shape[-1], seed=seed, name="queue")

    def keys_of(self, x: tf.Tensor, step: tf.Tensor, training: bool) -> tf.Tensor:
        """The key encoder's [B, D] features of this replica's ``x`` (shuffled BN with
        more than one replica), without gradient."""
        n_rep = distribute.num_replicas()
        if not self.shuffle_bn or n_rep == 1:
            return tf.stop_gradient(self.key_encoder(x, training=training))
        b = tf.shape(x)[0]
        first = distribute.replica_id() * b
        everything = distribute.all_gather(x)
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        order = tf.argsort(tf.random.stateless_uniform([b * n_rep], seed))
        mine = tf.gather(everything, order[first : first + b])  # this replica's shuffled slice
        shuffled = distribute.all_gather(
            tf.stop_gradient(self.key_encoder(mine, training=training))
        )
        back = tf.math.invert_permutation(order)[first : first + b]
        return tf.gather(shuffled, back)

    def step_loss(self, data, training):
        q = tf.cast(self.encoder(data["view_0"], training=training), tf.float32)
        k = tf.cast(self.keys_of(data["view_1"], self.optimizer.iterations, training), tf.float32)
        pos, neg = moco_logits(q, k, self.queue.keys.value, self.temperature)
        loss = softmax_bank_loss(pos, neg)
        tau = self.temperature
        return Step(
            loss,
            {"pos_sim": tf.reduce_mean(pos) * tau, "neg_sim": tf.reduce_mean(neg) * tau},
            {"keys": k},
        )

    def after_step(self, data, step):
        m = self.momentum
        # Paired when traced, not kept: a list of variables set on a Keras layer would be
        # tracked as another path to them in the checkpoint.
        for q_var, k_var in momentum_pairs(self.encoder, self.key_encoder):
            k_var.assign(m * k_var.value + (1.0 - m) * tf.cast(q_var.value, k_var.dtype))
        self.queue.enqueue(step.state["keys"])


def build(cfg, info) -> MoCo:
    d = cfg.moco
    return MoCo(
        image_encoder(cfg, info),
        queue_size=d.queue_size,
        momentum=d.momentum,
        temperature=d.temperature,
        shuffle_bn=d.shuffle_bn,
        seed=cfg.seed,
        key_encoder=image_encoder(cfg, info, name="key_encoder"),
        name="moco",
    )


def section_rules(cfg) -> None:
    d = cfg.moco
    if d.queue_size < 1:
        raise ConfigError(f"config.moco.queue_size: must be >= 1, got {d.queue_size}")
    if d.temperature <= 0:
        raise ConfigError(f"config.moco.temperature: must be > 0, got {d.temperature}")
    if not 0 <= d.momentum < 1:
        raise ConfigError(f"config.moco.momentum: must be in [0, 1), got {d.momentum}")


def rules(cfg, info=None) -> None:
    # A step enqueues the whole global batch: more keys than rows would write one row twice.
    if cfg.moco.queue_size < cfg.train.batch_size:
        raise ConfigError(
            f"config.moco.queue_size: {cfg.moco.queue_size} rows cannot take a "
            f"step's {cfg.train.batch_size} keys (config.train.batch_size)"
        )


def refusal(key: str, old: dict, new: dict) -> str | None:
    if key == "moco.queue_size":
        return (
            "the checkpoint's key queue has moco.queue_size rows and a pointer into "
            "them: it cannot be resized (train in a new --workdir)"
        )
    return None


SPEC = MethodSpec(
    build,
    section="moco",
    views=lambda cfg, info: views.PAIR,
    section_rules=section_rules,
    rules=rules,
    refusal=refusal,
)
