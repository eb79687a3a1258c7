"""The dataset families by ``dataset.name``: one line each.

A family object (:class:`tf_contrastive.data.family.Family`) owns the dataset's
config rules, description, training passes, evaluation stream and evaluation view.
The record families share one :class:`~tf_contrastive.data.shards.RecordShards`, so
a run has one shard catalog and one skipped-records count.
"""

from __future__ import annotations

from tf_contrastive.core.config import ConfigError
from tf_contrastive.data import (
    arrays,
    audio,
    cifar,
    family,
    image_folder,
    imagenet,
    multiview,
    shards,
    stl10,
)

RECORDS = shards.RecordShards()

FAMILIES: dict[str, family.Family] = {
    "fashion_mnist": arrays.ArrayFamily("fashion_mnist"),
    "digits": arrays.ArrayFamily("digits"),
    "imagenet": imagenet.ImagenetFamily(RECORDS),
    "multiview": multiview.MultiviewFamily(RECORDS),
    "audio": audio.AudioFamily(RECORDS),
    "cifar10": cifar.CifarFamily("cifar10"),
    "cifar100": cifar.CifarFamily("cifar100"),
    "stl10": stl10.Stl10Family(),
    "image_folder": image_folder.ImageFolderFamily(RECORDS.skipped),
}


def get(name: str) -> family.Family:
    """The family of ``dataset.name``; an unknown name is an error listing the known ones."""
    found = FAMILIES.get(name)
    if found is None:
        raise ConfigError(f"config.dataset.name: {name!r} is not one of {tuple(FAMILIES)}")
    return found


def check_config(cfg) -> None:
    """The configured family's rules (``core.config.validate`` runs them)."""
    get(cfg.dataset.name).check_config(cfg)
