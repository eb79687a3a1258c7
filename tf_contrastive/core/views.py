"""The seam between data and methods: which views a method's training batches carry.

A method declares a :class:`ViewSpec` (built from its own config section); the data
side (``data.pipeline.build_dataset(cfg, ctx, views=...)``) makes the batches it
describes from whatever dataset family is configured. The spec carries every view
parameter, so the data side never reads a method's config section.
"""

from __future__ import annotations

import dataclasses

# What a dataset family yields per example, and so which specs it can feed.
IMAGE, WAVEFORM, NAMED_VIEWS = "image", "waveform", "named_views"


@dataclasses.dataclass(frozen=True)
class PatchGrid:
    """CPC v2: each crop becomes a grid of ``size`` x ``size`` patches ``stride`` apart,
    each independently augmented and shifted by up to ``jitter`` pixels."""

    size: int
    stride: int
    jitter: int


@dataclasses.dataclass(frozen=True)
class ViewSpec:
    """How a training batch's views are made from each example.

    ``crops`` independent random crops are taken; without ``split`` each crop
    gets its own photometric augmentation and becomes one of ``keys``. With
    ``split`` (a :data:`tf_contrastive.core.color.SPLITS` name: CMC's channel
    splits) each crop is flipped and split into ``keys`` (one crop: all keys
    from it; one crop per key: key i from crop i); ``jitter`` then jitters the
    crop before the split, so views cut from one crop still describe the same
    pixels. ``patches`` turns the single crop into a patch grid under the one key.

    ``source`` is what the dataset must yield: images (the default), waveforms
    (audio records: one random window under ``waveform``, no augmentation) or
    named views (multi-view records: aligned crops under ``view_<name>``, the
    keys coming from the data, so ``keys`` is empty).
    """

    keys: tuple[str, ...]
    crops: int = 1
    split: str | None = None
    jitter: bool = True
    patches: PatchGrid | None = None
    source: str = IMAGE


SINGLE = ViewSpec(("image",))
PAIR = ViewSpec(("view_0", "view_1"), crops=2)
WAVEFORM_WINDOW = ViewSpec(("waveform",), source=WAVEFORM)
DATASET_VIEWS = ViewSpec((), source=NAMED_VIEWS)


def channel_split(split: str, same_crop: bool = True, jitter: bool = False) -> ViewSpec:
    """CMC's two channel-split views, ``view_l`` and ``view_ab``."""
    return ViewSpec(("view_l", "view_ab"), crops=1 if same_crop else 2, split=split,
                    jitter=jitter)


def patch_grid(size: int, stride: int, jitter: int) -> ViewSpec:
    """CPC v2's patch grid under ``patches``: [B, Gh, Gw, size, size, C]."""
    return ViewSpec(("patches",), patches=PatchGrid(size, stride, jitter))
