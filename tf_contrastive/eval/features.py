"""Feature extraction over an evaluation dataset."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def extract_features(model, dataset: tf.data.Dataset,
                     key: str = "image") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs ``model`` in inference mode over ``dataset`` -> (features, labels, ids).

    ``model``: a Keras model, or a plain function of the input (a SavedModel
    signature, already in inference mode, takes no ``training`` argument).
    """
    kwargs = {"training": False} if isinstance(model, keras.Model) else {}
    outputs, labels, ids = extract_outputs(lambda x: {"f": model(x, **kwargs)}, dataset, key)
    return outputs["f"], labels, ids


def extract_outputs(fn, dataset: tf.data.Dataset,
                    key: str = "image") -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Runs ``fn`` (input batch -> {name: [B, ...] tensor}) over ``dataset`` ->
    ({name: outputs of every batch}, labels, ids)."""

    @tf.function(reduce_retracing=True)
    def run(x):
        return fn(x)

    outputs, labels, ids = {}, [], []
    for batch in dataset:
        for name, value in run(batch[key]).items():
            outputs.setdefault(name, []).append(value.numpy())
        labels.append(batch["label"].numpy())
        ids.append(batch["index"].numpy())
    if not labels:
        raise ValueError("evaluation dataset is empty")
    return ({name: np.concatenate(v) for name, v in outputs.items()}, np.concatenate(labels),
            np.concatenate(ids))
