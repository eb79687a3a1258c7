"""The objective InstDisc and CMC share: features scored against memory-bank rows.

:class:`BankObjective` holds the parameters of "an instance against a bank of stored
features": K noise rows per sample (or shared by the batch), the temperature tau, the
bank's momentum m, and the loss: NCE (:mod:`tf_contrastive.losses.nce`, with the
normaliser Z estimated on the first batch, all-reduced over replicas, then frozen or
an EMA) or the sampled softmax (:mod:`tf_contrastive.losses.softmax_bank`). Its
:meth:`BankObjective.loss` takes any (positive, negative) logits, so a queue of keys
(MoCo) plugs in without copying: it only supplies other logits. The Z values are the
model's own variable (their checkpoint name stays ``z``); this object says how each
is estimated and when it is stored.

The loss names are checked here only (:func:`check_loss`), by the config rules and
by the constructors alike.
"""

from __future__ import annotations

import tensorflow as tf

from tf_contrastive.core import distribute
from tf_contrastive.core.config import ConfigError
from tf_contrastive.losses.nce import estimate_z, nce_loss, next_z
from tf_contrastive.losses.softmax_bank import softmax_bank_loss
from tf_contrastive.memory import MemoryBank

LOSSES = ("nce", "softmax")


def check_loss(loss: str, key: str) -> str:
    """``loss`` if it is a bank loss, else ConfigError naming ``config.<key>``."""
    if loss not in LOSSES:
        raise ConfigError(f"config.{key}: {loss!r} is not one of {LOSSES}")
    return loss


def check_section(cfg, section: str) -> None:
    """The ranges of a bank method's config section (``instdisc`` or ``cmc``)."""
    d = cfg[section]
    check_loss(d.loss, f"{section}.loss")
    if d.temperature <= 0:
        raise ConfigError(f"config.{section}.temperature: must be > 0, got {d.temperature}")
    if not 0 <= d.momentum < 1:
        raise ConfigError(f"config.{section}.momentum: must be in [0, 1), got {d.momentum}")
    if not 0 <= d.z_momentum < 1:
        raise ConfigError(f"config.{section}.z_momentum: must be in [0, 1), got {d.z_momentum}")
    if d.num_negatives < 1:
        raise ConfigError(f"config.{section}.num_negatives: must be >= 1, got {d.num_negatives}")


def check_negatives(cfg, section: str, info) -> None:
    """K < N: fewer noise rows than bank rows (the training examples of ``info``)."""
    k = cfg[section].num_negatives
    if info is not None and k >= info.num_train:
        raise ConfigError(
            f"config.{section}.num_negatives: K={k} must be < N={info.num_train} training examples"
        )


def z_refusal(section: str, key: str, old: dict, new: dict) -> str | None:
    """A resume may not change tau under a frozen NCE Z (``core.fingerprint`` hook)."""
    if (
        key == f"{section}.temperature"
        and old.get(f"{section}.loss") == "nce"
        and new.get(f"{section}.loss") == "nce"
        and not new.get(f"{section}.z_momentum")
    ):
        return (
            f"NCE's normaliser Z was estimated on the first batch under tau={old[key]} "
            f"and stays frozen ({section}.z_momentum=0): under another tau the NCE loss "
            f"would use a wrong Z (set {section}.z_momentum > 0 so that Z follows the new "
            "tau, or train in a new --workdir)"
        )
    return None


class BankObjective:
    """NCE or sampled softmax over bank rows, with noise sampling and bank updates."""

    def __init__(
        self,
        num_instances: int,
        num_negatives: int,
        temperature: float,
        momentum: float,
        loss: str,
        z_momentum: float,
        shared_negatives: bool,
        seed: int,
        section: str,
    ):
        self.kind = check_loss(loss, f"{section}.loss")
        self.num_instances = int(num_instances)
        self.num_negatives = int(num_negatives)
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.z_momentum = float(z_momentum)
        self.shared_negatives = bool(shared_negatives)
        self.seed = int(seed)

    @property
    def uses_z(self) -> bool:
        return self.kind == "nce"

    def noise_ids(self, bank: MemoryBank, local_batch: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        """[B, K] noise ids for this replica ([1, K] when negatives are shared)."""
        return bank.sample_noise(
            local_batch, self.num_negatives, self.seed, step, shared=self.shared_negatives
        )

    def logits(self, bank: MemoryBank, feats: tf.Tensor, ids: tf.Tensor, noise: tf.Tensor):
        """(pos [B], neg [B, K]) of ``feats`` against ``bank``, divided by tau."""
        return bank.logits(feats, ids, noise, self.temperature)

    def loss(
        self, pos: tf.Tensor, neg: tf.Tensor, z_current: tf.Tensor | None
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """(batch-mean loss, the Z to store or None) for logits ``pos``/``neg``.

        NCE: Z is this batch's estimate (mean over replicas) while ``z_current`` < 0
        (not estimated yet), then ``z_current`` (frozen) or an EMA of the estimates.
        """
        if self.kind != "nce":
            return softmax_bank_loss(pos, neg), None
        z_est = distribute.all_reduce_mean(
            estimate_z(tf.stop_gradient(pos), tf.stop_gradient(neg), self.num_instances)
        )
        z = next_z(z_current, z_est, self.z_momentum)
        return nce_loss(pos, neg, z, self.num_instances), z

    def update(self, bank: MemoryBank, ids: tf.Tensor, feats: tf.Tensor, labels=None) -> None:
        """Moves the batch's rows of ``bank`` towards ``feats`` with momentum m."""
        bank.update(ids, feats, self.momentum, labels=labels)
