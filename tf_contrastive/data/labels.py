"""Class labels of the TFRecord families: where the class count comes from, and the
per-record check.

The converters write ``classes.json`` beside the shards: ``{"num_classes": C,
"label_base": b}`` (C = 0 when the records carry no labels; the ImageNet converter
adds the sorted ``synsets``). A record's stored label ``y`` is class ``y - b``;
``y = -1`` (or a missing feature) means "no label". Every label read must lie in
[b, b + C), else the read stops naming the record, unless the dataset is declared
unlabeled (``dataset.labeled=False``), in which case every label is -1.

Where C comes from: ``dataset.num_classes`` when set (checked against
``classes.json`` if there is one), else ``classes.json``, else the schema's own
count (1000 for official ImageNet files, the speaker list for audio). The base:
``dataset.label_base`` when set (0 or 1), else ``classes.json``, else the
schema's (1 for ImageNet, 0 for multi-view and audio records).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from tf_contrastive.core.config import ConfigError

CLASSES_FILE = "classes.json"
IMAGENET_CLASSES = 1000  # official files without classes.json


@dataclasses.dataclass(frozen=True)
class LabelSchema:
    """What a record family's schema says about its labels (the family declares it).

    ``base``: the stored label of the first class; ``key``: the label feature.
    ``classes_file``: whether ``classes.json`` may say more. ``count`` (with
    ``count_source``) is the schema's own class count, checked against a declared one;
    ``default_count`` is used only when nothing else gives a count (official ImageNet
    files), so a declared count is not checked against it.
    """

    base: int
    key: str
    classes_file: bool = True
    count: int | None = None
    default_count: int | None = None
    count_source: str = ""


@dataclasses.dataclass(frozen=True)
class LabelSpec:
    """How stored labels map to classes 0..num_classes-1 (num_classes 0 = unlabeled)."""

    labeled: bool
    base: int
    num_classes: int
    source: str  # where num_classes came from, for error messages


def write_classes(output_dir: str, num_classes: int, label_base: int, **extra) -> str:
    """Writes ``classes.json`` (converters); returns its path."""
    path = os.path.join(output_dir, CLASSES_FILE)
    with open(path, "w") as f:
        json.dump(
            {"num_classes": int(num_classes), "label_base": int(label_base), **extra}, f, indent=1
        )
    return path


def read_classes(data_dir: str) -> tuple[dict | None, str]:
    """(contents of ``classes.json`` or None, its path)."""
    path = os.path.join(data_dir, CLASSES_FILE)
    if not tf.io.gfile.exists(path):
        return None, path
    with tf.io.gfile.GFile(path) as f:
        try:
            meta = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(meta.get("num_classes"), int) or meta["num_classes"] < 0:
        raise ValueError(f"{path}: needs a non-negative integer 'num_classes'")
    return meta, path


def resolve(ds_cfg, schema: LabelSchema) -> LabelSpec:
    """The label spec of a TFRecord dataset of the family whose schema is ``schema``."""
    declared_base = int(ds_cfg.label_base)
    if not ds_cfg.labeled:
        base = declared_base if declared_base >= 0 else schema.base
        return LabelSpec(False, base, 0, "config.dataset.labeled=False")
    meta, path = read_classes(ds_cfg.data_dir) if schema.classes_file else (None, "")
    base = schema.base
    if meta is not None and "label_base" in meta:
        base = int(meta["label_base"])
        if declared_base >= 0 and declared_base != base:
            raise ConfigError(
                f"config.dataset.label_base: {declared_base}, but {path} says "
                f"the records' labels start at {base}"
            )
    if declared_base >= 0:
        base = declared_base
    declared = int(ds_cfg.num_classes)
    if meta is not None:
        found, source = meta["num_classes"], path
        if found == 0:
            raise ConfigError(
                f"config.dataset.labeled: {path} says these records carry no "
                "labels; set --config.dataset.labeled=False to train without "
                "kNN and probes"
            )
    else:
        found, source = schema.count, schema.count_source
    if declared:
        if found is not None and declared != found:
            raise ConfigError(
                f"config.dataset.num_classes: {declared}, but {source} lists {found} classes"
            )
        return LabelSpec(True, base, declared, "config.dataset.num_classes")
    if found is None:
        found = schema.default_count
    if not found:
        raise ConfigError(
            f"config.dataset.num_classes: {ds_cfg.data_dir} has no "
            f"{CLASSES_FILE} (the converter writes it); declare the number of "
            "classes, or set dataset.labeled=False for unlabeled records"
        )
    return LabelSpec(True, base, int(found), source)


def _bad_label_reason(raw: tf.Tensor, spec: LabelSpec, key: str) -> tf.Tensor:
    text = tf.strings.as_string(raw)
    top = spec.base + spec.num_classes
    return tf.where(
        tf.equal(raw, -1),
        f"record has no {key} (for unlabeled data set --config.dataset.labeled=False)",
        tf.where(
            raw < spec.base,
            tf.strings.join(
                [
                    key,
                    " ",
                    text,
                    " is below the label base "
                    f"{spec.base} (labels starting at 0? set "
                    "--config.dataset.label_base=0)",
                ]
            ),
            tf.strings.join(
                [
                    key,
                    " ",
                    text,
                    f" is outside [{spec.base}, {top}): "
                    f"{spec.num_classes} classes from {spec.source}",
                ]
            ),
        ),
    )


def check_label(
    raw: tf.Tensor, spec: LabelSpec, key: str, where: tf.Tensor, check: tf.Tensor | bool = True
) -> tf.Tensor:
    """Stored label -> class (int32); a bad label where ``check`` holds stops the read
    with an error naming ``where`` (shard + record). -1 for unlabeled datasets."""
    if not spec.labeled:
        return tf.constant(-1, tf.int32)
    raw = tf.cast(raw, tf.int32)
    label = raw - spec.base
    bad = tf.logical_and(check, tf.logical_or(label < 0, label >= spec.num_classes))

    def fail():
        assertion = tf.debugging.Assert(
            False, ["bad label:", where, _bad_label_reason(raw, spec, key)], summarize=1
        )
        with tf.control_dependencies([assertion]):
            return tf.identity(label)

    return tf.cond(bad, fail, lambda: label)


def check_array_labels(labels: np.ndarray, num_classes: int, what: str, source: str) -> None:
    """In-memory labels must lie in [0, num_classes); the error names the example."""
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise ConfigError(
            f"config.dataset.num_classes: {what} example {i} has label "
            f"{int(labels[i])}, outside [0, {num_classes}) ({num_classes} "
            f"classes from {source}; {bad.size} such examples)"
        )
