"""Feature extraction over an evaluation dataset."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def extract_features(model: keras.Model, dataset: tf.data.Dataset,
                     key: str = "image") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs ``model`` in inference mode over ``dataset`` -> (features, labels, ids)."""

    @tf.function(reduce_retracing=True)
    def embed(x):
        return model(x, training=False)

    feats, labels, ids = [], [], []
    for batch in dataset:
        feats.append(embed(batch[key]).numpy())
        labels.append(batch["label"].numpy())
        ids.append(batch["index"].numpy())
    if not feats:
        raise ValueError("evaluation dataset is empty")
    return np.concatenate(feats), np.concatenate(labels), np.concatenate(ids)
