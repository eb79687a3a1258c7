"""The online linear probe: a classifier trained beside any method on frozen features.

As solo-learn and SimCLR report it: a linear softmax classifier on the pooled backbone
features (``models.encoder.backbone_of``; in training mode, run stateless), their gradient
stopped, trained in the same ``train_step`` as the method on the training batch's ``label``
with its own SGD optimizer. The method's loss, gradients, optimizer state and batch-norm
statistics never see it; its
training loss and top-1 are trackers (``probe_loss``, ``probe_top1``), and the
per-epoch monitor scores it on the evaluation split (``probe_eval_top1``).

Labels of -1 (unlabelled rows, e.g. STL-10's train+unlabeled) are masked out of its
loss and accuracy. Its classifier and optimizer (slots, step count) are checkpointed
with the model: the model holds this object as ``online_probe``, a ``tf.Module``, so
Keras does not count its weights among the method's ``trainable_variables``.

Distribution rule: the mean over the labelled rows of the global batch, each replica
dividing its sum by the global count (replicas may hold different numbers of labelled
rows), the optimizer summing gradients; without unlabelled rows this is the template's
local mean divided by ``num_replicas_in_sync``.
"""

from __future__ import annotations

import types

import keras
import tensorflow as tf

from tf_contrastive.core import distribute
from tf_contrastive.models.encoder import backbone_of

TRACKERS = ("probe_loss", "probe_top1")


class OnlineProbe(tf.Module):
    """Linear classifier + its SGD optimizer on ``encoder``'s pooled features."""

    def __init__(
        self,
        encoder: keras.Model,
        num_classes: int,
        learning_rate: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
    ):
        super().__init__(name="online_probe")
        self.encoder_input_shape = tuple(encoder.input.shape[1:])
        features = backbone_of(encoder)
        self.classifier = keras.layers.Dense(int(num_classes), dtype="float32", name="online_probe")
        self.classifier.build((None, int(features.output.shape[-1])))
        self.optimizer = keras.optimizers.SGD(
            float(learning_rate), momentum=float(momentum), weight_decay=float(weight_decay) or None
        )
        self.optimizer.build(self.classifier.trainable_variables)
        # Models that share the encoders' layers: kept out of the checkpoint's object
        # graph (a plain namespace is not tracked), which holds the encoders already.
        self._untracked = types.SimpleNamespace(
            pooled={id(encoder): features},
            evaluate=keras.Model(encoder.input, [encoder.output, features.output]),
        )

    def pooled(self, encoder: keras.Model) -> keras.Model:
        """``backbone_of(encoder)``, built once per encoder (outside any tf.function
        being traced: it is a Keras model, not part of the step's graph)."""
        models = self._untracked.pooled
        if id(encoder) not in models:
            with tf.init_scope():
                models[id(encoder)] = backbone_of(encoder)
        return models[id(encoder)]

    def features(self, encoder: keras.Model, x: tf.Tensor) -> tf.Tensor:
        """``backbone_of(encoder)`` of a training batch in training mode (batch-norm batch
        statistics, as the method's own forward sees them), run stateless: nothing of the
        encoder is written, its moving statistics neither. Inference mode would read those
        moving statistics, which under MirroredStrategy each replica keeps its own copy of
        (the checkpoint holds the first's), so a resumed run's probe would drift off."""
        model = self.pooled(encoder)
        outputs, _ = model.stateless_call(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            x,
            training=True,
        )
        return outputs

    def input_of(self, data: dict) -> tf.Tensor | None:
        """The batch entry shaped like the encoder's input (None matching any size):
        ``image`` if there is one, else the first such key in sorted order (``view_0`` of
        a pair, ``waveform``); None if none."""
        keys = ["image"] if "image" in data else []
        keys += sorted(k for k in data if k != "image")
        for key in keys:
            shape = tuple(data[key].shape[1:])
            if len(shape) == len(self.encoder_input_shape) and all(
                want is None or got == want
                for got, want in zip(shape, self.encoder_input_shape, strict=True)
            ):
                return data[key]
        return None

    def train_on(self, features: tf.Tensor, labels: tf.Tensor, trackers: dict) -> None:
        """One SGD step of the classifier on ``features`` (gradient stopped) and
        ``labels`` (-1 masked); updates the ``probe_*`` trackers."""
        feats = tf.stop_gradient(tf.cast(features, tf.float32))
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        labelled = labels >= 0
        weight = tf.cast(labelled, tf.float32)
        target = tf.where(labelled, labels, 0)
        count = tf.reduce_sum(weight)
        # Labelled rows of the whole global batch: replicas may hold different numbers.
        global_count = tf.maximum(
            distribute.all_reduce_mean(count) * distribute.num_replicas(), 1.0
        )
        variables = self.classifier.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.classifier(feats)
            per_row = tf.nn.sparse_softmax_cross_entropy_with_logits(target, logits)
            total = tf.reduce_sum(per_row * weight)
            share = total / global_count  # summed over replicas: the global mean
        self.optimizer.apply(tape.gradient(share, variables), variables)
        loss = total / tf.maximum(count, 1.0)
        correct = tf.cast(
            tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), target), tf.float32
        )
        trackers["probe_loss"].update_state(loss, sample_weight=count)
        trackers["probe_top1"].update_state(correct, sample_weight=weight)

    def eval_outputs(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """{"embeddings": the encoder's output, "predictions": the probe's class} of a
        batch of evaluation inputs, in one pass through the encoder."""
        embeddings, pooled = self._untracked.evaluate(images, training=False)
        logits = self.classifier(tf.cast(pooled, tf.float32))
        return {
            "embeddings": embeddings,
            "predictions": tf.argmax(logits, axis=-1, output_type=tf.int32),
        }
