"""The per-epoch kNN monitor: validation features against the memory bank."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_contrastive.eval.features import extract_features
from tf_contrastive.eval.knn import knn_accuracy


class KNNMonitor(keras.callbacks.Callback):
    """Adds ``knn_top1``/``knn_top5`` to the epoch logs every ``every`` epochs.

    During training the validation features are scored against the memory
    bank, as Wu et al.'s code does each epoch. ``evaluate(recompute=True)``
    first recomputes every training feature with the evaluation view, as their
    code does for the final figure: the bank's rows were written at different
    moments of the epoch and lag the network. The training model is a method
    (``methods.base.ContrastiveModel``): ``encoder`` and ``knn_bank()``, which is None
    for methods without a bank (InvaSpread, CPC), so they always recompute. The last
    figures are kept in ``self.last``, and ``self.last_from_bank`` says whether they
    were scored against the bank.
    """

    def __init__(self, make_eval_dataset, num_classes: int, k: int = 200,
                 sigma: float = 0.07, every: int = 1, last_epoch: int | None = None,
                 make_train_dataset=None, key: str = "image", use_bank: bool = True):
        super().__init__()
        self.make_eval_dataset = make_eval_dataset
        self.make_train_dataset = make_train_dataset
        self.num_classes = num_classes
        self.k, self.sigma, self.every = k, sigma, max(1, every)
        self.last_epoch = last_epoch
        self.last: dict[str, float] = {}
        self.last_from_bank = False
        self.key = key  # the batch key holding the encoder's input
        # False: the bank's rows are not the reference split's (always recompute).
        self.use_bank = use_bank

    def evaluate(self, recompute: bool = False) -> dict[str, float]:
        feats, labels, _ = extract_features(self.model.encoder, self.make_eval_dataset(),
                                              key=self.key)
        stored = None if recompute or not self.use_bank else self.model.knn_bank()
        if stored is None:
            train_feats, train_labels, ids = extract_features(
                self.model.encoder, self.make_train_dataset(), key=self.key)
            order = tf.argsort(ids)
            bank = tf.gather(train_feats, order)
            bank_labels = tf.gather(train_labels, order)
        else:
            bank, bank_labels = stored
        self.last_from_bank = stored is not None
        self.last = knn_accuracy(feats, labels, bank, bank_labels, self.num_classes,
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
