"""The per-epoch kNN monitor: validation features against the memory bank."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_contrastive.eval.features import extract_features, extract_outputs
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
    were scored against the bank. With an online linear probe attached
    (``model.online_probe``) the same pass over the evaluation split also scores it:
    ``probe_eval_top1`` (labelled examples only).
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
        probe = self.model.online_probe
        probe_scores = {}
        if probe is None:
            feats, labels, _ = extract_features(self.model.encoder, self.make_eval_dataset(),
                                                key=self.key)
        else:  # the same pass gives the online probe's predictions
            outputs, labels, _ = extract_outputs(probe.eval_outputs, self.make_eval_dataset(),
                                                 key=self.key)
            feats = outputs["embeddings"]
            labelled = labels >= 0
            if labelled.any():
                hits = outputs["predictions"][labelled] == labels[labelled]
                probe_scores["probe_eval_top1"] = float(np.mean(hits))
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
        self.last = {**knn_accuracy(feats, labels, bank, bank_labels, self.num_classes,
                                    k=self.k, sigma=self.sigma), **probe_scores}
        return self.last

    def on_epoch_end(self, epoch, logs=None):
        is_last = self.last_epoch is not None and epoch + 1 == self.last_epoch
        if (epoch + 1) % self.every and not is_last:
            return
        result = self.evaluate()
        if logs is not None:
            logs.update(result)
        probe = (f", online probe top-1 {result['probe_eval_top1']:.4f}"
                 if "probe_eval_top1" in result else "")
        print(f"\nepoch {epoch + 1}: kNN top-1 {result['knn_top1']:.4f} "
              f"top-5 {result['knn_top5']:.4f}{probe}", flush=True)
