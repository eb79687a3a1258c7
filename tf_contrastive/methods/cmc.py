"""CMC: contrastive multiview coding (Tian, Krishnan, Isola 2019).

One encoder and one memory bank per view. For a pair of views (i, j) the
features of view i are scored against view j's bank (positive: the instance's
own row; negatives: K noise rows) and vice versa, each direction with its own
NCE normaliser Z_{i->j} (first-batch estimate, then frozen) or with the sampled
softmax; every direction uses the same K noise ids per sample (or, with
``shared_negatives``, one set of K ids for the whole batch, as InstDisc's
option: one [B, K] matmul per direction instead of B*K gathered rows). Two
views give L = L_{1->2} + L_{2->1}. With more views the objective sums the
pair losses over the "core" pairs (V_1, V_j) or the "full" graph (all i < j).
After each step every bank moves towards its view's features with momentum m.

Reuses InstDisc's parts: :class:`MemoryBank` (scoring, sampling, update) and
:mod:`tf_contrastive.losses.nce` / ``softmax_bank``.

Batch dict consumed: one key per view (``view_l``, ``view_ab`` for the
channel splits), each [B, H, W, C_view], plus ``index`` and optional ``label``.
Distribution rule: as InstDisc (local mean / replicas, summed gradients).
"""

from __future__ import annotations

import itertools

import keras
import tensorflow as tf

from tf_contrastive.core import distribute
from tf_contrastive.losses.nce import estimate_z, nce_loss, next_z
from tf_contrastive.losses.softmax_bank import softmax_bank_loss
from tf_contrastive.memory import MemoryBank
from tf_contrastive.methods.base import ContrastiveModel, encode_rows


def view_pairs(num_views: int, objective: str) -> list[tuple[int, int]]:
    """The (i, j) pairs summed by the objective: 'core' = (0, j); 'full' = all i < j."""
    if objective == "core":
        return [(0, j) for j in range(1, num_views)]
    if objective == "full":
        return list(itertools.combinations(range(num_views), 2))
    raise ValueError(f"config.cmc.objective: {objective!r} is not one of ('core', 'full')")


class CMC(ContrastiveModel):
    """Per-view encoders and banks, trained by ``fit``; ``encoder`` maps an image to
    the concatenated view embeddings (for kNN, probes and export)."""

    def __init__(self, view_encoders: dict[str, keras.Model], encoder: keras.Model,
                 num_instances: int, num_negatives: int = 16384, temperature: float = 0.07,
                 momentum: float = 0.5, loss: str = "nce", objective: str = "core",
                 z_momentum: float = 0.0, shared_negatives: bool = False, seed: int = 0,
                 **kwargs):
        keys = tuple(view_encoders)
        pairs = view_pairs(len(keys), objective)
        directions = [(i, j) for a, b in pairs for i, j in ((a, b), (b, a))]
        term_names = {d: f"loss_{keys[d[0]]}_to_{keys[d[1]]}" for d in directions}
        super().__init__(encoder, ("loss", *term_names.values()), **kwargs)
        self.pairs, self.term_names = pairs, term_names
        if loss not in ("nce", "softmax"):
            raise ValueError(f"config.cmc.loss: {loss!r} is not one of ('nce', 'softmax')")
        self.view_keys = keys
        self.view_encoders = self.track("view_encoder",
                                        [view_encoders[k] for k in self.view_keys])
        self.num_instances = int(num_instances)
        self.num_negatives = int(num_negatives)
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.loss_kind = loss
        self.z_momentum = float(z_momentum)
        self.shared_negatives = bool(shared_negatives)
        self.seed = int(seed)
        self.banks = self.track("bank", [
            MemoryBank(num_instances, enc.output_shape[-1], seed=seed + i, name=f"bank_{key}")
            for i, (key, enc) in enumerate(zip(self.view_keys, self.view_encoders,
                                               strict=True))])
        n = len(self.view_keys)
        # z[i * n + j] normalises view i's features scored against view j's bank.
        self.z = self.add_weight(shape=(n * n,), initializer=keras.initializers.Constant(-1.0),
                                 trainable=False, aggregation="only_first_replica", name="z")

    @property
    def bank(self) -> MemoryBank:
        """The first view's bank (what single-bank tools such as the kNN monitor read)."""
        return self.banks[0]

    def pair_losses(self, feats: list[tf.Tensor], ids: tf.Tensor, noise: tf.Tensor):
        """({(i, j): loss of view i against bank j}, {(i, j): new Z}) for the objective."""
        n = len(self.view_keys)
        losses, zs = {}, {}
        for a, b in self.pairs:
            for i, j in ((a, b), (b, a)):
                pos, neg = self.banks[j].logits(feats[i], ids, noise, self.temperature)
                if self.loss_kind == "nce":
                    z_est = distribute.all_reduce_mean(estimate_z(
                        tf.stop_gradient(pos), tf.stop_gradient(neg), self.num_instances))
                    zs[(i, j)] = next_z(self.z.value[i * n + j], z_est, self.z_momentum)
                    losses[(i, j)] = nce_loss(pos, neg, zs[(i, j)], self.num_instances)
                else:
                    losses[(i, j)] = softmax_bank_loss(pos, neg)
        return losses, zs

    def train_step(self, data):
        ids = data["index"]
        local_batch = tf.shape(ids)[0]
        noise = self.banks[0].sample_noise(local_batch, self.num_negatives, self.seed,
                                           self.optimizer.iterations,
                                           shared=self.shared_negatives)
        with tf.GradientTape() as tape:
            feats = [enc(data[key], training=True)
                     for key, enc in zip(self.view_keys, self.view_encoders, strict=True)]
            losses, zs = self.pair_losses(feats, ids, noise)
            loss = tf.add_n(list(losses.values()))
            scaled = loss / distribute.num_replicas()
        self.apply_gradients_of(scaled, tape)
        if zs:
            n = len(self.view_keys)
            z = self.z.value
            updates = tf.stack([zs.get((k // n, k % n), z[k]) for k in range(n * n)])
            self.z.assign(updates)
        for bank, f in zip(self.banks, feats, strict=True):
            bank.update(ids, f, self.momentum, labels=data.get("label"))
        return self.report(loss=loss, **{self.term_names[d]: v for d, v in losses.items()})

    def monitor_scalars(self) -> dict[str, tf.Tensor]:
        """Z of every direction the objective uses (NCE only)."""
        if self.loss_kind != "nce":
            return {}
        n = len(self.view_keys)
        return {f"nce/Z_{self.view_keys[i]}_to_{self.view_keys[j]}": self.z.value[i * n + j]
                for i, j in self.term_names}

    def knn_bank(self) -> tuple[tf.Tensor, tf.Tensor]:
        """(rows, labels) comparable with ``encoder``'s output: the banks concatenated
        and divided by sqrt(views) as the combined embedding is, or the core view's
        bank when ``encoder`` is the core view's encoder (multi-view records)."""
        labels = tf.convert_to_tensor(self.banks[0].labels.value)
        if self.encoder.output_shape[-1] == self.banks[0].dim:  # the core view's encoder
            return tf.convert_to_tensor(self.banks[0].features.value), labels
        rows = tf.concat([tf.convert_to_tensor(b.features.value) for b in self.banks], axis=1)
        return rows / float(len(self.banks)) ** 0.5, labels

    def fill_bank_step(self, data):
        """Warm start from evaluation batches (``image``): each view's bank rows set
        to its encoder's features of the image's view."""
        def encode(image):
            views = self.encoder.get_layer("view_split")(image)
            return [enc(view, training=False)
                    for view, enc in zip(views, self.view_encoders, strict=True)]

        feats = encode_rows(data["image"], encode, self.view_encoders)
        for f, bank in zip(feats, self.banks, strict=True):
            bank.update(data["index"], f, momentum=0.0, labels=data.get("label"))
        return tf.shape(data["index"])[0]
