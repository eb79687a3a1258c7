"""Contrastive losses, one concept per file, each tested against a NumPy re-derivation.

Public imports: ``from tf_contrastive.losses import nce_loss, softmax_bank_loss, ...``.
"""

from tf_contrastive.losses.infonce import cpc_loss, info_nce, predict_along_rows
from tf_contrastive.losses.invaspread import invaspread_loss
from tf_contrastive.losses.nce import estimate_z, nce_loss, next_z
from tf_contrastive.losses.softmax_bank import full_softmax_bank_loss, softmax_bank_loss

__all__ = ["cpc_loss", "estimate_z", "full_softmax_bank_loss", "info_nce", "invaspread_loss",
           "nce_loss", "next_z", "predict_along_rows", "softmax_bank_loss"]
