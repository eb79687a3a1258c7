"""Linear probes on frozen features.

* ``svm_probe``: scikit-learn's LinearSVC on L2-normalised features, the
  InstDisc paper's protocol for small sets (C chosen on a held-out slice of
  the training features).
* ``keras_probe``: a softmax linear classifier trained with SGD on features
  that were extracted once (the CMC/InstDisc ImageNet protocol minus the
  crop augmentation), with optional TensorBoard logging.
"""

from __future__ import annotations

import keras
import numpy as np


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def check_labels(train_labels: np.ndarray, test_labels: np.ndarray, num_classes: int) -> None:
    """Raises naming the field when labels disagree with the probe's class count."""
    for name, y in (("train", train_labels), ("test", test_labels)):
        y = np.asarray(y)
        if y.size == 0:
            raise ValueError(f"{name} labels: empty")
        if y.min() < 0 or y.max() >= num_classes:
            raise ValueError(f"{name} labels: values span [{y.min()}, {y.max()}] but the probe "
                             f"has num_classes={num_classes}")


def svm_probe(train_x, train_y, test_x, test_y, cs=(0.1, 1.0, 10.0), seed: int = 0) -> dict:
    """Top-1 of LinearSVC with C picked on 10% of the training features."""
    from sklearn.svm import LinearSVC

    train_x, test_x = _normalise(train_x), _normalise(test_x)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train_x))
    n_val = max(len(train_x) // 10, 1)
    val, fit = order[:n_val], order[n_val:]
    best_c, best = cs[0], -1.0
    for c in cs:
        clf = LinearSVC(C=c, max_iter=5000, random_state=seed).fit(train_x[fit], train_y[fit])
        acc = float(np.mean(clf.predict(train_x[val]) == train_y[val]))
        if acc > best:
            best_c, best = c, acc
    clf = LinearSVC(C=best_c, max_iter=5000, random_state=seed).fit(train_x, train_y)
    return {"svm_top1": float(np.mean(clf.predict(test_x) == test_y)), "svm_C": best_c}


def keras_probe(train_x, train_y, test_x, test_y, num_classes: int, epochs: int = 30,
                batch_size: int = 256, learning_rate: float = 0.1, weight_decay: float = 0.0,
                logdir: str | None = None, verbose: int = 0) -> dict:
    """Top-1/top-5 of a linear softmax classifier on standardised frozen features."""
    check_labels(train_y, test_y, num_classes)
    train_x = np.asarray(train_x, np.float32)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x = (train_x - mean) / std
    test_x = (np.asarray(test_x, np.float32) - mean) / std
    steps = max(len(train_x) // batch_size, 1) * epochs
    lr = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    model = keras.Sequential([keras.Input((train_x.shape[1],)),
                              keras.layers.Dense(num_classes, name="linear")])
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9,
                                                 weight_decay=weight_decay or None),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1"),
                           keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")])
    callbacks = [keras.callbacks.TensorBoard(logdir)] if logdir else []
    model.fit(train_x, np.asarray(train_y), batch_size=batch_size, epochs=epochs,
              validation_data=(test_x, np.asarray(test_y)), callbacks=callbacks,
              verbose=verbose, shuffle=True)
    _, top1, top5 = model.evaluate(test_x, np.asarray(test_y), verbose=0)
    return {"linear_top1": float(top1), "linear_top5": float(top5)}
