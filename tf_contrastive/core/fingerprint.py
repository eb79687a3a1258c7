"""The run fingerprint: what a run's checkpoints depend on, kept beside them.

``<workdir>/checkpoints/fingerprint.json`` holds the resolved config keys that
shape the restored state or the continuation (everything but what only decides
reporting, logging or speed, :data:`UNCHECKED`) and facts of the run that the
config does not spell out (``run.*``: N, the training shards with their record
counts and sizes or the in-memory arrays' digest, input shape, classes, steps per
epoch, replicas). A resume compares the new fingerprint with the stored one
before anything is written or restored: a change must be listed in
``config.train.allow_changes``, and a change the checkpoint cannot honour
(:func:`refusal`) is refused even then, with the reason.
"""

from __future__ import annotations

import json
import os

import ml_collections
import tensorflow as tf

from tf_contrastive.core.config import RUN_FACTS, ConfigError, base_config

FILENAME = "fingerprint.json"
VERSION = 1

# Keys that decide only what is reported, logged or kept, or how fast the input runs:
# they never enter the fingerprint, so they may change on any resume.
UNCHECKED = (
    "tpu_address",
    "dataset.threads",
    "dataset.check_jpegs",
    "dataset.data_service",
    "dataset.eval_limit",
    "train.log_every_steps",
    "train.checkpoints_to_keep",
    "train.backup_every_steps",
    "train.export",
    "train.allow_changes",
)
UNCHECKED_SECTIONS = ("eval",)

_IDENTITY = (
    "dataset identity: the checkpoint's memory-bank rows, instance ids and data "
    "order belong to the training set it was written with; train on another set "
    "in a new --workdir"
)
SHAPES_REASON = (
    "sets the shapes of the network's variables (embedding_dim also the memory "
    "bank's dimension): the checkpoint's weights cannot be loaded into it"
)
_NEVER = {
    "method": "a checkpoint of one method cannot continue as another",
    "dataset.name": _IDENTITY,
    "dataset.train_limit": _IDENTITY,
    "dataset.train_classes": _IDENTITY,
    "dataset.view_names": _IDENTITY,
    "run.num_train": "N, the number of training examples, is the memory bank's row count "
    "and the range of the instance ids; " + _IDENTITY,
    "run.train_shards": _IDENTITY,
    "run.train_digest": _IDENTITY,
    "model.backbone": SHAPES_REASON,
    "model.width": SHAPES_REASON,
    "model.embedding_dim": SHAPES_REASON,
    "model.head": SHAPES_REASON,
    "model.head_hidden": SHAPES_REASON,
    "dataset.view_channels": SHAPES_REASON,
    "optimizer.name": "the optimizer's slots in the checkpoint belong to the other optimizer",
}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _normal(value):
    """The value as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def _checked(key: str, skip_sections) -> bool:
    section = key.split(".", 1)[0] if "." in key else ""
    return not (key in UNCHECKED or section in UNCHECKED_SECTIONS or section in skip_sections)


def build(cfg: ml_collections.ConfigDict, facts: dict, skip_sections=()) -> dict:
    """The fingerprint of ``cfg`` with the run facts ``facts`` (keys ``run.*``).

    ``skip_sections``: config sections the run does not read (the other methods'
    sections, ``tf_contrastive.methods.other_sections``), left out.
    """
    unknown = set(facts) - set(RUN_FACTS)
    if unknown:
        raise ValueError(f"unknown run facts {sorted(unknown)}; known: {RUN_FACTS}")
    keys = {k: v for k, v in _flat(cfg.to_dict()).items() if _checked(k, skip_sections)}
    return {"version": VERSION, "keys": _normal({**keys, **facts})}


def load(directory: str) -> dict | None:
    """The fingerprint stored in the checkpoint ``directory`` (None: there is none)."""
    path = os.path.join(directory, FILENAME)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"{path}: not valid JSON ({e}); restore it or move the run directory away"
            ) from e


def save(directory: str, fingerprint: dict, config_file: str) -> None:
    """Writes the fingerprint atomically (temporary file, then rename)."""
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, FILENAME)
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        json.dump({**fingerprint, "config_file": config_file}, f, indent=1)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def refusal(key: str, old: dict, new: dict, method_refusal=None) -> str | None:
    """Why the change of ``key`` from ``old`` to ``new`` (whole fingerprints' keys)
    cannot be honoured by a resume, or None when it can.

    ``method_refusal(key, old, new)``: the run's method's own reasons for the keys of
    its section (its ``MethodSpec.refusal``), asked first.
    """
    if method_refusal is not None:
        why = method_refusal(key, old, new)
        if why:
            return why
    if key in _NEVER:
        return _NEVER[key]
    if key == "probe.online":
        return ("the online probe's classifier and optimizer are part of the checkpoint "
                "only when it is on")
    if key == "mixed_precision" and "mixed_float16" in (old.get(key), new.get(key)):
        return "mixed_float16 adds the loss-scale optimizer's state to the checkpoint"
    if (
        key == "optimizer.momentum"
        and new.get("optimizer.name") == "sgd"
        and 0 in (old.get(key), new.get(key))
    ):
        return "SGD keeps momentum slots only when momentum > 0: the checkpoint's differ"
    return None


def _defaults() -> dict:
    return _normal(_flat(base_config().to_dict()))


def changes(old: dict, new: dict) -> dict[str, tuple]:
    """{key: (old value, new value)} of every key whose value differs.

    A config key missing from ``old`` (added to the code since) counts as its
    default; keys the code no longer has are ignored.
    """
    old_keys, new_keys = old.get("keys", {}), new["keys"]
    defaults = _defaults()
    out = {}
    for key, value in new_keys.items():
        before = old_keys.get(key, defaults.get(key, "<absent>"))
        if before != value:
            out[key] = (before, value)
    return out


class ResumeMismatch(ConfigError):
    """The config or data differ from those the run's checkpoints were written with."""


def _show(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def check(directory: str, stored: dict, new: dict, allowed,
          method_refusal=None) -> dict[str, tuple]:
    """Raises ResumeMismatch unless every change is allowed and can be honoured.

    Returns the accepted changes. The message lists every changed key, old -> new,
    with the reason for each refused one and the flag that accepts the others.
    """
    diff = changes(stored, new)
    if not diff:
        return {}
    old_keys, new_keys = stored.get("keys", {}), new["keys"]
    refused = {k: refusal(k, old_keys, new_keys, method_refusal) for k in diff}
    refused = {k: why for k, why in refused.items() if why}
    not_listed = [k for k in diff if k not in refused and k not in allowed]
    if not refused and not not_listed:
        return diff
    lines = []
    for key, (before, after) in diff.items():
        if key in refused:
            note = f"REFUSED: {refused[key]}"
        elif key in allowed:
            note = "allowed by config.train.allow_changes"
        else:
            note = "not in config.train.allow_changes"
        lines.append(f"  {key}: {_show(before)} -> {_show(after)}  ({note})")
    source = stored.get("config_file")
    msg = [
        f"{directory}: cannot resume, this run differs from the one its checkpoints were "
        f"written with ({os.path.join(directory, FILENAME)}"
        + (f", {source}" if source else "")
        + "):",
        *lines,
        "Nothing was written or restored.",
    ]
    allowable = [k for k in diff if k not in refused]
    if refused:
        msg.append(
            "A REFUSED change cannot be resumed honestly: undo it, or train in a new --workdir."
        )
    if allowable:
        listed = ",".join(repr(k) for k in sorted(set(allowable) | set(allowed)))
        msg.append(
            f'To accept the other changes, add --config.train.allow_changes="({listed},)"'
            if not refused
            else f'The others can be accepted with --config.train.allow_changes="({listed},)"'
        )
    raise ResumeMismatch("\n".join(msg))
