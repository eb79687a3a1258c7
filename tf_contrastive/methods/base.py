"""What every method model shares: the encoder call, loss trackers, a no-op build."""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from tf_contrastive.core import distribute


class ContrastiveModel(keras.Model):
    """A method: ``encoder`` plus a ``train_step`` reporting Mean trackers by name.

    Every variable is created in the constructor (encoders are built, banks have
    a fixed size), so ``build`` has nothing to do.
    """

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
