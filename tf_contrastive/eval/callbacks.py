"""The per-epoch kNN monitor: validation features against the memory bank."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.eval.features import extract_features
from tf_contrastive.eval.knn import knn_accuracy


class KNNMonitor(keras.callbacks.Callback):
    """Adds ``knn_top1``/``knn_top5`` to the epoch logs every ``every`` epochs.

    The training model must expose ``encoder`` and a ``bank`` with ``features``
    and ``labels`` (InstDisc, CMC). The last figures are kept in ``self.last``.
    """

    def __init__(self, make_eval_dataset, num_classes: int, k: int = 200,
                 sigma: float = 0.07, every: int = 1, last_epoch: int | None = None):
        super().__init__()
        self.make_eval_dataset = make_eval_dataset
        self.num_classes = num_classes
        self.k, self.sigma, self.every = k, sigma, max(1, every)
        self.last_epoch = last_epoch
        self.last: dict[str, float] = {}

    def evaluate(self) -> dict[str, float]:
        feats, labels, _ = extract_features(self.model.encoder, self.make_eval_dataset())
        bank = self.model.bank
        self.last = knn_accuracy(feats, labels, tf.convert_to_tensor(bank.features.value),
                                 tf.convert_to_tensor(bank.labels.value), self.num_classes,
                                 k=self.k, sigma=self.sigma)
        return self.last

    def on_epoch_end(self, epoch, logs=None):
        is_last = self.last_epoch is not None and epoch + 1 == self.last_epoch
        if (epoch + 1) % self.every and not is_last:
            return
        result = self.evaluate()
        if logs is not None:
            logs.update(result)
        print(f"\nepoch {epoch + 1}: kNN top-1 {result['knn_top1']:.4f} "
              f"top-5 {result['knn_top5']:.4f}", flush=True)
