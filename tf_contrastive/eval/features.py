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

    @tf.function(reduce_retracing=True)
    def embed(x):
        return model(x, **kwargs)

    feats, labels, ids = [], [], []
    for batch in dataset:
        feats.append(embed(batch[key]).numpy())
        labels.append(batch["label"].numpy())
        ids.append(batch["index"].numpy())
    if not feats:
        raise ValueError("evaluation dataset is empty")
    return np.concatenate(feats), np.concatenate(labels), np.concatenate(ids)
