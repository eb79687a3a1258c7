"""Backbones: a CIFAR-stem ResNet-18 with a width multiplier, and Keras's ResNet-50.

Both map images in [0, 1] (after the encoder's input normalisation) to a pooled
feature vector; the projection head lives in :mod:`tf_contrastive.models.encoder`.
"""

from __future__ import annotations

import keras
from keras import layers


def _bn(name: str, sync: bool):
    # synchronized=True averages batch statistics over all replicas (a no-op on one).
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=sync, name=name)


def _basic_block(x, filters: int, stride: int, name: str, sync_bn: bool = False):
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv1")(x)
    y = _bn(f"{name}_bn1", sync_bn)(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = _bn(f"{name}_bn2", sync_bn)(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                 name=f"{name}_proj")(x)
        shortcut = _bn(f"{name}_proj_bn", sync_bn)(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def resnet18_cifar(input_shape: tuple[int, int, int], width: int = 64,
                   name: str = "backbone", sync_bn: bool = False) -> keras.Model:
    """ResNet-18 with a 3x3 stride-1 stem and no max-pool, for small images.

    ``width`` is the first stage's channel count (64 in the standard network);
    the stages have width, 2w, 4w, 8w channels, so the feature size is 8 * width.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _bn("stem_bn", sync_bn)(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, (mult, stride) in enumerate([(1, 1), (2, 2), (4, 2), (8, 2)]):
        for block in range(2):
            x = _basic_block(x, width * mult, stride if block == 0 else 1,
                             name=f"s{stage + 1}b{block + 1}", sync_bn=sync_bn)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, x, name=name)


def resnet50(input_shape: tuple[int, int, int], width: int = 64,
             name: str = "backbone", sync_bn: bool = False) -> keras.Model:
    """Keras's ResNet-50 (weights=None), average-pooled; ``width`` must be 64."""
    if width != 64:
        raise ValueError(f"config.model.width: resnet50 supports only width 64, got {width}")
    if sync_bn:
        raise ValueError("config.model.sync_bn: Keras's ResNet-50 has no synchronized "
                         "batch-norm option; use resnet18_cifar or per-replica BN")
    net = keras.applications.ResNet50(include_top=False, weights=None,
                                      input_shape=input_shape, pooling="avg")
    inputs = keras.Input(shape=input_shape, name="image")
    return keras.Model(inputs, net(inputs), name=name)


BACKBONES = {"resnet18_cifar": resnet18_cifar, "resnet50": resnet50}


def build_backbone(name: str, input_shape: tuple[int, int, int], width: int,
                   sync_bn: bool = False) -> keras.Model:
    """Looks ``name`` up in BACKBONES; an unknown name lists the known ones."""
    if name not in BACKBONES:
        raise ValueError(f"config.model.backbone: unknown backbone {name!r}; "
                         f"known: {sorted(BACKBONES)}")
    return BACKBONES[name](input_shape, width=width, sync_bn=sync_bn)
