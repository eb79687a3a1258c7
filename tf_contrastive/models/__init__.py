"""Backbones and heads, and :func:`load_encoder` for an exported ``encoder.keras``.

Importing this package registers every custom layer the encoders use (with
``keras.saving``), so ``keras.saving.load_model`` can read the file too.
"""

from __future__ import annotations

import keras

from tf_contrastive.models import cpc, resnet
from tf_contrastive.models.encoder import add_head, backbone_of, build_encoder

__all__ = ["add_head", "backbone_of", "build_encoder", "cpc", "load_encoder", "resnet"]


def load_encoder(path: str) -> keras.Model:
    """The encoder a training run exported as ``<export>/<version>/encoder.keras``.

    A plain Keras model, trainable, for fine-tuning: images in [0, 1] (CPC audio:
    float waveforms) in, the L2-normalised embedding out; ``backbone_of(encoder)``
    gives the pooled features a classifier goes on.
    """
    if not path.endswith(".keras"):
        raise ValueError(f"{path}: not a .keras file (the export writes "
                         "<workdir>/export/<version>/encoder.keras)")
    return keras.saving.load_model(path, compile=False)
