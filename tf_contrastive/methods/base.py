"""What every method shares: its declaration (:class:`MethodSpec`), the model base class
with one training-step template and the hooks the trainer, monitors and export call.

The contract a method follows (one file, one registry line in ``methods/__init__.py``):

* its file defines a :class:`ContrastiveModel` subclass and ``SPEC = MethodSpec(...)``:
  the builder from (cfg, dataset info), its config section's name and rules, its
  training views, its warm start and its resume refusals;
* the model implements :meth:`ContrastiveModel.step_loss` (the forward pass) and, if it
  keeps state outside the optimizer (memory banks, Z), :meth:`ContrastiveModel.after_step`;
  every other hook has a default: ``knn_bank`` (None: the kNN monitor recomputes the
  training features), ``monitor_scalars``, ``monitored_banks``, ``fill_bank_step``,
  ``export``, ``frame_features``, ``probe_features`` (what the online linear probe of
  :mod:`~tf_contrastive.methods.online_probe` trains on, when one is attached).

**The one loss-scaling rule**: ``step_loss`` returns this replica's *mean* loss over its
own batch; the template divides it by ``num_replicas_in_sync`` before the gradient,
and the optimizer sums the gradients across replicas (Keras 3's default), so N
replicas follow the gradient of the global mean. Trackers show the local mean (their
cross-replica result is the global mean). No method scales its loss itself.

**Checkpointed state**: tf.train.Checkpoint follows a Keras 3 model's layer and variable
attributes, not layers inside a list: a layer kept in a list goes through :meth:`track`.
``tests/methods/test_specs.py`` builds every shipped config's model and checks that
every variable is in its checkpoint, so a forgotten ``track`` fails there.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping

import keras
import tensorflow as tf

from tf_contrastive.core import distribute
from tf_contrastive.core import views as view_lib
from tf_contrastive.core.export import export_encoder
from tf_contrastive.methods.online_probe import TRACKERS as PROBE_TRACKERS
from tf_contrastive.methods.online_probe import OnlineProbe
from tf_contrastive.models.encoder import backbone_of, build_encoder


def _no_rules(cfg, info=None) -> None:
    return None


def _no_refusal(key: str, old: Mapping, new: Mapping) -> str | None:
    return None


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A method's declaration: everything the trainer, validation and fingerprint need.

    * ``build(cfg, info) -> ContrastiveModel``, ``info`` being the dataset's
      ``DatasetInfo`` (sizes, input shape, ``source``);
    * ``section``: the config section it reads (its keys enter the run fingerprint,
      the other methods' sections do not);
    * ``views(cfg, info) -> ViewSpec``: the views its training batches carry;
    * ``sources``: the dataset sources (``core.views`` IMAGE / WAVEFORM / NAMED_VIEWS)
      it can train on;
    * ``section_rules(cfg)``: the ranges and names of its config section, checked for
      every registered method (a config file sets every section: a typo in one is
      an error whichever method runs);
    * ``rules(cfg, info)``: the rules when it is the configured method, against the
      data (``info`` None: only what the config alone decides); both raise
      ConfigError naming the key;
    * ``warm_start(cfg) -> bool``: fill the memory bank before training;
    * ``refusal(key, old, new) -> str | None``: why a resume cannot honour a change of
      one of its keys (``core.fingerprint.refusal`` covers the generic keys).
    """

    build: Callable[..., keras.Model]
    section: str
    views: Callable[..., view_lib.ViewSpec] = lambda cfg, info: view_lib.SINGLE
    sources: tuple[str, ...] = (view_lib.IMAGE,)
    section_rules: Callable[..., None] = _no_rules
    rules: Callable[..., None] = _no_rules
    warm_start: Callable[..., bool] = lambda cfg: False
    refusal: Callable[[str, Mapping, Mapping], str | None] = _no_refusal


@dataclasses.dataclass
class Step:
    """What :meth:`ContrastiveModel.step_loss` returns: this replica's mean ``loss``, the
    other tracker values, and whatever :meth:`ContrastiveModel.after_step` needs."""

    loss: tf.Tensor
    metrics: dict = dataclasses.field(default_factory=dict)
    state: dict = dataclasses.field(default_factory=dict)


class ContrastiveModel(keras.Model):
    """A method: ``encoder`` plus the training-step template, reporting Mean trackers.

    Every variable is created in the constructor (encoders are built, banks have
    a fixed size), so ``build`` has nothing to do.
    """

    # For frame-level probes (evaluate --protocols=phone): inputs -> [B, T, C] features.
    frame_features = None
    # The online linear probe (attach_online_probe; config.probe.online), else None.
    online_probe: OnlineProbe | None = None

    def __init__(self, encoder: keras.Model, tracker_names: tuple[str, ...], **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.trackers = {n: keras.metrics.Mean(name=n) for n in tracker_names}

    def build(self, input_shape=None):
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3's fit pulls one batch and all-reduces it to trace a symbolic
        # build. Our model variables all exist already (constructor), and that
        # reduction fails on a dict batch under MultiWorkerMirroredStrategy, so
        # it is skipped; only the optimizer still needs its slots when the model
        # was compiled by hand (the Python API) rather than by trainer.build_model.
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def track(self, prefix: str, layers) -> list:
        """Returns ``layers`` as a list, each also set as attribute ``<prefix>_<i>``.

        tf.train.Checkpoint follows a Keras 3 model's layer attributes but not
        the layers inside a list attribute, so every layer kept in a list
        (memory banks, per-view or per-direction networks) must also be an
        attribute of its own or it is silently left out of checkpoints.
        """
        layers = list(layers)
        for i, layer in enumerate(layers):
            setattr(self, f"{prefix}_{i}", layer)
        return layers

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def loss_tracker(self) -> keras.metrics.Mean:
        return self.trackers["loss"]

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    # ---- the training-step template ----

    def step_loss(self, data: dict, training: bool) -> Step:
        """The forward pass on one batch dict: this replica's mean loss (see the module)."""
        raise NotImplementedError(f"{type(self).__name__} must define step_loss")

    def after_step(self, data: dict, step: Step) -> None:
        """State updates after the optimizer step (memory banks, Z); default none."""
        # A statement, not only the docstring: AutoGraph drops docstrings, and an empty
        # body is a syntax error in its generated code (it warned on every such method).
        del data, step

    def train_step(self, data):
        probe_feats, before_method = None, contextlib.nullcontext()
        if self.online_probe is not None:
            # The features of the weights this step starts from; the method's ops wait for
            # them, so no write of this step (batch-norm statistics, the update) can race
            # with their reads and a rerun or resume stays bit-identical.
            probe_feats = self.probe_features(data)
            if probe_feats is not None:
                before_method = tf.control_dependencies([probe_feats])
        with before_method:
            with tf.GradientTape() as tape:
                step = self.step_loss(data, training=True)
                share = step.loss / distribute.num_replicas()  # the one loss-scaling rule
            self.apply_gradients_of(share, tape)
            self.after_step(data, step)
        if probe_feats is not None:  # its own tape and optimizer
            self.online_probe.train_on(probe_feats, data["label"], self.trackers)
        return self.report(loss=step.loss, **step.metrics)

    def apply_gradients_of(self, loss: tf.Tensor, tape: tf.GradientTape) -> None:
        """One optimizer step on ``loss`` (this replica's share).

        ``scale_loss`` is the identity except under a LossScaleOptimizer
        (mixed_float16), which unscales the gradients again in ``apply``.
        """
        variables = self.trainable_variables
        with tape:
            scaled = self.optimizer.scale_loss(loss)
        self.optimizer.apply(tape.gradient(scaled, variables), variables)

    def report(self, **values) -> dict:
        """Updates the named trackers and returns every tracker's result."""
        for name, value in values.items():
            self.trackers[name].update_state(value)
        results = {m.name: m.result() for m in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 reduces fit's logs across workers with reduce(MEAN, axis=0),
            # which needs a leading axis: give it one; the reduction returns scalars.
            results = {k: tf.reshape(v, [1]) for k, v in results.items()}
        return results

    def attach_online_probe(self, num_classes: int, learning_rate: float = 0.1,
                            momentum: float = 0.9, weight_decay: float = 0.0) -> OnlineProbe:
        """Trains a linear classifier on ``probe_features`` beside the method from now on
        (in the strategy scope, before ``compile``); adds its trackers."""
        self.online_probe = OnlineProbe(self.encoder, num_classes, learning_rate, momentum,
                                        weight_decay)
        for name in PROBE_TRACKERS:
            self.trackers[name] = keras.metrics.Mean(name=name)
        return self.online_probe

    # ---- hooks with defaults: what the trainer, monitors and export ask a method ----

    def probe_features(self, data: dict) -> tf.Tensor | None:
        """[B, F] features of a training batch for the online probe (their gradient is
        stopped), comparable with ``backbone_of(encoder)`` on evaluation inputs, or None
        (no probe step). Default: ``backbone_of(encoder)`` in training mode, stateless
        (``OnlineProbe.features``), on the batch entry shaped like the encoder's input
        (``image``, else the first view). Computed before ``step_loss``, from the weights
        the step starts from."""
        x = self.online_probe.input_of(data)
        if x is None:
            raise ValueError(
                f"config.probe.online: {type(self).__name__}'s training batches (keys "
                f"{sorted(data)}) hold no input shaped like its encoder's "
                f"{self.online_probe.encoder_input_shape}: the method must define "
                "probe_features (or return None from it: no online probe)")
        return self.online_probe.features(self.encoder, x)

    def knn_bank(self) -> tuple[tf.Tensor, tf.Tensor] | None:
        """(rows, labels) comparable with ``encoder``'s output that the per-epoch kNN
        monitor scores against, or None: it recomputes the training features."""
        return None

    def monitor_scalars(self) -> dict[str, tf.Tensor]:
        """Extra per-epoch TensorBoard scalars (e.g. NCE's Z)."""
        return {}

    def monitored_banks(self) -> list:
        """Memory banks whose row norms and coverage the run monitor writes (declared,
        never found by attribute name: a queue is not a bank)."""
        return []

    def fill_bank_step(self, data: dict) -> tf.Tensor:
        """Warm start from one evaluation batch (methods whose spec warm-starts)."""
        raise NotImplementedError(f"{type(self).__name__} has no memory bank to fill")

    def export(self, export_root: str, input_shape: tuple[int, ...], jpeg_view=None) -> str:
        """Writes the encoder's SavedModel under ``export_root``; returns the version folder.

        Default: uint8 image and (with ``jpeg_view``) JPEG signatures, embeddings and
        the pooled backbone features (``core.export.export_encoder``).
        """
        return export_encoder(self.encoder, export_root, input_shape, jpeg_view=jpeg_view,
                              features=backbone_of(self.encoder))


def image_encoder(cfg, info, shape=None, mean=None, std=None, name="encoder") -> keras.Model:
    """The ``cfg.model`` encoder for the dataset's images (or ``shape``/``mean``/``std``)."""
    return build_encoder(shape or info.image_shape, cfg.model.backbone, cfg.model.width,
                         cfg.model.embedding_dim, mean or info.mean, std or info.std, name=name,
                         sync_bn=cfg.model.sync_bn, head=cfg.model.head,
                         head_hidden=cfg.model.head_hidden)


def encode_rows(x: tf.Tensor, encode: Callable, encoders: list) -> list[tf.Tensor]:
    """``encode(x)`` (one feature batch per encoder), also for a replica left with no rows.

    A warm start's last batch can leave a replica with none, and some kernels fail
    on a batch of 0 (oneDNN's convolutions, MirrorPad); that replica then
    contributes empty [0, D] blocks to the cross-replica bank update it must
    still join.
    """
    outs = [e.outputs[0] for e in encoders]
    return tf.cond(tf.shape(x)[0] > 0, lambda: list(encode(x)),
                   lambda: [tf.zeros([0, o.shape[-1]], o.dtype) for o in outs])


def candidates_of(x: tf.Tensor, across_replicas: bool) -> tuple[tf.Tensor | None, tf.Tensor]:
    """(candidates, index of this replica's first row in them) for in-batch negatives.

    Across replicas: ``x`` gathered from every replica in replica order (the
    gather sends each replica's gradient back to the replica that computed the
    rows). Otherwise (None, 0): this replica's own rows.
    """
    if not across_replicas or distribute.num_replicas() == 1:
        return None, tf.constant(0, tf.int32)
    gathered = distribute.all_gather(x)
    gathered.set_shape([None, *x.shape[1:]])  # the gather forgets every static dimension
    return gathered, distribute.replica_id() * tf.shape(x)[0]
