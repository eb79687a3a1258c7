"""CMC: contrastive multiview coding (Tian, Krishnan, Isola 2019).

One encoder and one memory bank per view. For a pair of views (i, j) the
features of view i are scored against view j's bank (positive: the instance's
own row; negatives: K noise rows) and vice versa, each direction with its own
NCE normaliser Z_{i->j} (first-batch estimate, then frozen) or with the sampled
softmax (or, with ``num_negatives`` 0, the softmax over all N rows of the bank);
every direction uses the same K noise ids per sample (or, with
``shared_negatives``, one set of K ids for the whole batch, as InstDisc's
option: one [B, K] matmul per direction instead of B*K gathered rows). Two
views give L = L_{1->2} + L_{2->1}. With more views the objective sums the
pair losses over the "core" pairs (V_1, V_j) or the "full" graph (all i < j).
After each step every bank moves towards its view's features with momentum m.

Shares InstDisc's objective: :class:`MemoryBank` (scoring, sampling, update) and
:class:`~tf_contrastive.methods.bank_objective.BankObjective` (NCE / softmax, Z).

Batch dict consumed: one key per view (``view_l``, ``view_ab`` for the
channel splits; ``view_<name>`` for multi-view records), each [B, H, W, C_view],
plus ``index`` and optional ``label``. Every bank is declared to the run monitor
(``monitored_banks``). Distribution rule: the template's (``methods/base.py``).
"""

from __future__ import annotations

import itertools

import keras
import tensorflow as tf

from tf_contrastive.core import color, views
from tf_contrastive.core.config import ConfigError
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
from tf_contrastive.models.encoder import build_multiview_encoder

OBJECTIVES = ("core", "full")
# The channels each channel split of cmc.views needs.
SPLIT_CHANNELS = {"lab": 3, "ycbcr": 3, "intensity_gradient": 1}
# Input normalisation of the split views, which are scaled to about [0, 1].
VIEW_MEAN, VIEW_STD = 0.5, 0.25


def view_pairs(num_views: int, objective: str) -> list[tuple[int, int]]:
    """The (i, j) pairs summed by the objective: 'core' = (0, j); 'full' = all i < j."""
    if objective == "core":
        return [(0, j) for j in range(1, num_views)]
    if objective == "full":
        return list(itertools.combinations(range(num_views), 2))
    raise ConfigError(f"config.cmc.objective: {objective!r} is not one of {OBJECTIVES}")


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
        self.objective = BankObjective(num_instances, num_negatives, temperature, momentum,
                                       loss, z_momentum, shared_negatives, seed, "cmc")
        self.view_keys = keys
        self.view_encoders = self.track("view_encoder",
                                        [view_encoders[k] for k in self.view_keys])
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
        """The first view's bank."""
        return self.banks[0]

    def pair_losses(self, feats: list[tf.Tensor], ids: tf.Tensor, noise: tf.Tensor):
        """({(i, j): loss of view i against bank j}, {(i, j): new Z}) for the objective."""
        n = len(self.view_keys)
        losses, zs = {}, {}
        for a, b in self.pairs:
            for i, j in ((a, b), (b, a)):
                losses[(i, j)], z, _, _ = self.objective.score(
                    self.banks[j], feats[i], ids, noise, self.z.value[i * n + j], sims=False)
                if z is not None:
                    zs[(i, j)] = z
        return losses, zs

    def step_loss(self, data, training):
        ids = data["index"]
        noise = self.objective.noise_ids(self.banks[0], tf.shape(ids)[0],
                                         self.optimizer.iterations)
        feats = [enc(data[key], training=training)
                 for key, enc in zip(self.view_keys, self.view_encoders, strict=True)]
        losses, zs = self.pair_losses(feats, ids, noise)
        return Step(tf.add_n(list(losses.values())),
                    {self.term_names[d]: v for d, v in losses.items()},
                    {"feats": feats, "zs": zs})

    def after_step(self, data, step):
        zs = step.state["zs"]
        if zs:
            n = len(self.view_keys)
            z = self.z.value
            self.z.assign(tf.stack([zs.get((k // n, k % n), z[k]) for k in range(n * n)]))
        for bank, f in zip(self.banks, step.state["feats"], strict=True):
            self.objective.update(bank, data["index"], f, data.get("label"))

    def monitor_scalars(self) -> dict[str, tf.Tensor]:
        """Z of every direction the objective uses (NCE only)."""
        if not self.objective.uses_z:
            return {}
        n = len(self.view_keys)
        return {f"nce/Z_{self.view_keys[i]}_to_{self.view_keys[j]}": self.z.value[i * n + j]
                for i, j in self.term_names}

    def monitored_banks(self) -> list:
        return list(self.banks)

    def probe_features(self, data):
        """The views' pooled features concatenated, as ``backbone_of(encoder)`` gives them
        for an image (only the core view's when ``encoder`` is the core view's)."""
        count = 1 if self.encoder.output_shape[-1] == self.banks[0].dim else len(self.view_keys)
        return tf.concat([self.online_probe.features(enc, data[key])
                          for key, enc in zip(self.view_keys[:count],
                                              self.view_encoders[:count], strict=True)],
                         axis=-1)

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
            split = self.encoder.get_layer("view_split")(image)
            return [enc(view, training=False)
                    for view, enc in zip(split, self.view_encoders, strict=True)]

        feats = encode_rows(data["image"], encode, self.view_encoders)
        for f, bank in zip(feats, self.banks, strict=True):
            bank.update(data["index"], f, momentum=0.0, labels=data.get("label"))
        return tf.shape(data["index"])[0]


def _views(cfg, info) -> list[tuple[str, int]]:
    """(batch key, channels) of each view: the dataset's named views, else the split's."""
    if info.source == views.NAMED_VIEWS:
        return [(f"view_{n}", int(c)) for n, c in zip(cfg.dataset.view_names,
                                                      cfg.dataset.view_channels, strict=True)]
    return [("view_l", 1), ("view_ab", 2)]


def build(cfg, info) -> CMC:
    d = cfg.cmc
    h, w, _ = info.image_shape
    encoders = {}
    for key, channels in _views(cfg, info):
        encoders[key] = image_encoder(cfg, info, (h, w, channels), [VIEW_MEAN] * channels,
                                      [VIEW_STD] * channels, name=f"encoder_{key}")
    if info.source == views.NAMED_VIEWS:
        combined = next(iter(encoders.values()))  # the core view's encoder
    else:
        combined = build_multiview_encoder(info.image_shape, d.views, list(encoders.values()))
    return CMC(encoders, combined, info.num_train, num_negatives=d.num_negatives,
               temperature=d.temperature, momentum=d.momentum, loss=d.loss,
               objective=d.objective, z_momentum=d.z_momentum,
               shared_negatives=d.shared_negatives, seed=cfg.seed, name="cmc")


def view_spec(cfg, info) -> views.ViewSpec:
    if info.source == views.NAMED_VIEWS:
        return views.DATASET_VIEWS
    return views.channel_split(cfg.cmc.views, cfg.cmc.same_crop, cfg.cmc.jitter)


def section_rules(cfg) -> None:
    m = cfg.cmc
    if m.views not in color.SPLITS:
        raise ConfigError(f"config.cmc.views: {m.views!r} is not one of {tuple(color.SPLITS)}")
    bank_objective.check_loss(m.loss, "cmc.loss")
    if m.objective not in OBJECTIVES:
        raise ConfigError(f"config.cmc.objective: {m.objective!r} is not one of {OBJECTIVES}")
    bank_objective.check_section(cfg, "cmc")


def rules(cfg, info=None) -> None:
    if info is None:
        return
    if info.source == views.NAMED_VIEWS:
        if cfg.cmc.warm_start:
            raise ConfigError("config.cmc.warm_start: is for the channel-split views, not "
                              "multi-view records")
    elif len(info.image_shape) == 3 and info.image_shape[-1] != SPLIT_CHANNELS[cfg.cmc.views]:
        views_, channels = cfg.cmc.views, info.image_shape[-1]
        fits = [v for v, c in SPLIT_CHANNELS.items() if c == channels]
        raise ConfigError(f"config.cmc.views: {views_!r} splits {SPLIT_CHANNELS[views_]}-channel "
                          f"images, the {cfg.dataset.name} images have {channels} channel(s)"
                          + (f"; use one of {tuple(fits)}" if fits else ""))
    bank_objective.check_negatives(cfg, "cmc", info)


def _refusal(key, old, new):
    if key == "cmc.views":
        return "the view encoders were trained on the other split of the image"
    return bank_objective.z_refusal("cmc", key, old, new)


SPEC = MethodSpec(build, section="cmc", views=view_spec,
                  sources=(views.IMAGE, views.NAMED_VIEWS), section_rules=section_rules,
                  rules=rules, warm_start=lambda cfg: bool(cfg.cmc.warm_start), refusal=_refusal)
