"""The objective InstDisc and CMC share: features scored against memory-bank rows.

:class:`BankObjective` holds the parameters of "an instance against a bank of stored
features": K noise rows per sample (or shared by the batch), the temperature tau, the
bank's momentum m, and the loss: NCE (:mod:`tf_contrastive.losses.nce`, with the
normaliser Z estimated on the first batch, all-reduced over replicas, then frozen or
an EMA) or the sampled softmax (:mod:`tf_contrastive.losses.softmax_bank`); K = 0 with
the softmax scores every one of the N rows instead (the full non-parametric softmax,
lemniscate.pytorch's ``--nce-k 0``), in chunks of rows. Its
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
from tf_contrastive.losses.softmax_bank import (
    FULL_BANK_CHUNK,
    full_softmax_bank_loss,
    softmax_bank_loss,
)
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
    check_num_negatives(d.num_negatives, d.loss, section)


def check_num_negatives(k: int, loss: str, section: str) -> int:
    """``k`` if it is K >= 1, or 0 (every bank row) with the softmax; else ConfigError."""
    if k < 0 or (k == 0 and loss != "softmax"):
        raise ConfigError(f"config.{section}.num_negatives: must be >= 1 (or 0 = all N bank "
                          f"rows, with {section}.loss='softmax'), got {k} with loss {loss!r}")
    return int(k)


def check_negatives(cfg, section: str, info) -> None:
    """K < N: fewer noise rows than bank rows (the training examples of ``info``)."""
    k = cfg[section].num_negatives
    if info is not None and 0 < k and k >= info.num_train:
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
    """NCE or (sampled or full) softmax over bank rows, with noise sampling and bank updates.

    ``num_negatives`` 0 (softmax only): every row of the bank, the instance's own row
    included, is a class of the cross-entropy; no noise is drawn, and ``chunk`` rows
    are scored per matmul (the result does not depend on it beyond float rounding).
    """

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
        chunk: int = FULL_BANK_CHUNK,
    ):
        self.kind = check_loss(loss, f"{section}.loss")
        self.num_instances = int(num_instances)
        self.num_negatives = check_num_negatives(int(num_negatives), loss, section)
        self.chunk = int(chunk)
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.z_momentum = float(z_momentum)
        self.shared_negatives = bool(shared_negatives)
        self.seed = int(seed)

    @property
    def uses_z(self) -> bool:
        return self.kind == "nce"

    @property
    def full_bank(self) -> bool:
        """Scores every bank row (K = 0) instead of K sampled ones."""
        return self.num_negatives == 0

    def noise_ids(self, bank: MemoryBank, local_batch: tf.Tensor,
                  step: tf.Tensor) -> tf.Tensor | None:
        """[B, K] noise ids for this replica ([1, K] when negatives are shared); None
        with the full bank."""
        if self.full_bank:
            return None
        return bank.sample_noise(
            local_batch, self.num_negatives, self.seed, step, shared=self.shared_negatives
        )

    def logits(self, bank: MemoryBank, feats: tf.Tensor, ids: tf.Tensor, noise: tf.Tensor):
        """(pos [B], neg [B, K]) of ``feats`` against ``bank``, divided by tau."""
        return bank.logits(feats, ids, noise, self.temperature)

    def score(self, bank: MemoryBank, feats: tf.Tensor, ids: tf.Tensor,
              noise: tf.Tensor | None, z_current: tf.Tensor | None, sims: bool = True):
        """(batch-mean loss, the Z to store or None, mean positive similarity, mean
        negative similarity) of ``feats`` against ``bank``, ``noise`` the sampled rows;
        ``sims=False`` leaves the similarities out (None), and their ops out of the graph.

        With the full bank the negatives are the N - 1 rows other than each sample's
        own; their mean similarity is f . (sum of the rows - own row) / (N - 1), no
        [B, N] matrix needed.
        """
        tau = self.temperature
        if not self.full_bank:
            pos, neg = self.logits(bank, feats, ids, noise)
            loss, z = self.loss(pos, neg, z_current)
            if not sims:
                return loss, z, None, None
            return loss, z, tf.reduce_mean(pos) * tau, tf.reduce_mean(neg) * tau
        rows = tf.convert_to_tensor(bank.features.value)
        loss = full_softmax_bank_loss(feats, rows, ids, tau, self.chunk)
        if not sims:
            return loss, None, None, None
        f = tf.stop_gradient(tf.cast(feats, tf.float32))
        pos = tf.reduce_sum(f * bank.gather(ids), axis=1)
        others = tf.linalg.matvec(f, tf.reduce_sum(rows, axis=0)) - pos
        n_other = float(max(self.num_instances - 1, 1))
        return loss, None, tf.reduce_mean(pos), tf.reduce_mean(others) / n_other

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
