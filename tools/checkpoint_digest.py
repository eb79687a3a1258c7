"""Digests of the checkpoints deterministic runs end with: the check that a refactor kept behaviour.

    python -m tools.checkpoint_digest --out=/tmp/before.json          # on the old code
    python -m tools.checkpoint_digest --compare=/tmp/before.json      # on the new code

A developer tool, run from the checkout (it writes its data with the test helpers). Each run
is a smoke config with ``deterministic=True`` trained for two short epochs in one fresh process
with two logical CPUs, covering every method and every dataset family: in-memory digits for
all five image methods, ImageNet-schema TFRecords (CMC L/ab with its own crops, InvaSpread),
multi-view records (three-view CMC), audio records (CPC) and MirroredStrategy over two replicas
(InstDisc). For each run the tool records a SHA-256 of every checkpoint variable (name, dtype,
shape and bytes; the save counter and object-graph metadata left out): after two epochs they
depend on every batch the run read and every augmentation it drew. ``--compare`` exits 1 naming each run whose variables are not bit-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile

from absl import app, flags

from tests.helpers import (
    checkpoint_values,
    make_audio_records,
    train_in_subprocess,
    write_jpeg_folder,
)

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "", "Write the digests to this JSON file.")
flags.DEFINE_string(
    "compare", "", "Compare with the digests in this JSON file (exit 1 if any differ)."
)
flags.DEFINE_list("runs", [], "Only these runs (default: all).")
flags.DEFINE_string("workdir", "", "Keep data and runs here (default: a temporary folder).")

_COMMON = {
    "train.epochs": 2,
    "deterministic": True,
    "eval.knn_at_init": False,
    "eval.projector_examples": 0,
    "eval.every_epochs": 2,
}
_DIGITS = {
    **_COMMON,
    "dataset.train_limit": 200,
    "dataset.eval_limit": 50,
    "train.steps_per_epoch": 3,
}


def _records_runs(imagenet: str, multiview: str, audio: str) -> dict:
    records = {
        **_COMMON,
        "dataset.name": "imagenet",
        "dataset.data_dir": imagenet,
        "dataset.image_size": 16,
        "dataset.eval_limit": 0,
        "dataset.shuffle_buffer": 8,
        "train.batch_size": 4,
        "train.steps_per_epoch": 3,
        "eval.batch_size": 4,
        "eval.knn_k": 5,
    }
    return {
        "cmc_records_own_crops": (
            "smoke_cmc_digits",
            {**records, "cmc.views": "lab", "cmc.same_crop": False, "cmc.num_negatives": 8},
        ),
        "invaspread_records": ("smoke_invaspread_digits", records),
        "cmc_multiview": (
            "smoke_cmc_digits",
            {
                **_COMMON,
                "dataset.name": "multiview",
                "dataset.data_dir": multiview,
                "dataset.view_names": ("rgb", "depth", "normals"),
                "dataset.view_channels": (3, 1, 3),
                "dataset.num_classes": 3,
                "dataset.image_size": 16,
                "dataset.shuffle_buffer": 4,
                "cmc.warm_start": False,
                "cmc.objective": "full",
                "cmc.num_negatives": 6,
                "train.batch_size": 4,
                "eval.batch_size": 4,
                "eval.knn_k": 3,
            },
        ),
        "cpc_audio": ("smoke_cpc_audio", {**_COMMON, "dataset.data_dir": audio}),
    }


def _array_runs() -> dict:
    return {
        "instdisc_digits": ("smoke_instdisc_digits", _DIGITS),
        "instdisc_digits_mirrored": (
            "smoke_instdisc_digits",
            {**_DIGITS, "strategy": "mirrored", "dataset.train_limit": 400},
        ),
        "invaspread_digits": ("smoke_invaspread_digits", _DIGITS),
        "cmc_digits": ("smoke_cmc_digits", _DIGITS),
        "cpc_image_digits": ("smoke_cpc_image_digits", _DIGITS),
    }


def _write_multiview(root: str) -> None:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("validation", 4)):
        for i in range(n):
            rgb = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
            for view, img, enc, ext in (
                ("rgb", rgb, tf.io.encode_jpeg, "jpg"),
                ("depth", rgb[..., :1], tf.io.encode_png, "png"),
                ("normals", 255 - rgb, tf.io.encode_png, "png"),
            ):
                folder = os.path.join(root, split, view)
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, f"{i:04d}.{ext}"), "wb") as f:
                    f.write(enc(img).numpy())
        with open(os.path.join(root, split, "labels.txt"), "w") as f:
            f.write("".join(f"{i:04d} {i % 3}\n" for i in range(n)))


def make_data(root: str) -> tuple[str, str, str]:
    """(imagenet, multiview, audio) record folders under ``root``, made once."""
    from tools.build_imagenet_tfrecords import convert as convert_imagenet
    from tools.build_multiview_tfrecords import convert as convert_multiview

    paths = [os.path.join(root, n) for n in ("imagenet", "multiview", "audio")]
    if not os.path.isdir(paths[0]):
        write_jpeg_folder(os.path.join(root, "jpegs"))
        convert_imagenet(
            os.path.join(root, "jpegs"),
            paths[0],
            train_shards=2,
            validation_shards=1,
            num_threads=2,
        )
    if not os.path.isdir(paths[1]):
        _write_multiview(os.path.join(root, "views"))
        convert_multiview(
            os.path.join(root, "views"),
            paths[1],
            ["rgb", "depth", "normals"],
            train_shards=3,
            validation_shards=1,
            threads=2,
        )
    if not os.path.isdir(paths[2]):
        make_audio_records(os.path.join(root, "corpus"), paths[2])
    return tuple(paths)


def digest(workdir: str) -> str:
    h = hashlib.sha256()
    for name, value in sorted(checkpoint_values(workdir).items()):
        h.update(f"{name}|{value.dtype}|{value.shape}|".encode())
        h.update(value.tobytes())
    return h.hexdigest()


def main(argv):
    del argv
    root = FLAGS.workdir or tempfile.mkdtemp(prefix="digest_")
    runs = {**_array_runs(), **_records_runs(*make_data(os.path.join(root, "data")))}
    if FLAGS.runs:
        runs = {k: v for k, v in runs.items() if k in FLAGS.runs}
    jobs = [
        {"config": config, "workdir": os.path.join(root, "runs", name), "overrides": overrides}
        for name, (config, overrides) in runs.items()
    ]
    for job in jobs:
        if os.path.exists(job["workdir"]):
            sys.exit(f"{job['workdir']} exists: pass an empty --workdir")
    train_in_subprocess(jobs)
    digests = {name: digest(job["workdir"]) for name, job in zip(runs, jobs, strict=True)}
    for name, d in digests.items():
        print(f"{name:28s} {d}")
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(digests, f, indent=1, sort_keys=True)
    if FLAGS.compare:
        with open(FLAGS.compare) as f:
            before = json.load(f)
        differ = [n for n in digests if before.get(n) != digests[n]]
        if differ:
            print(f"NOT bit-identical: {differ}")
            sys.exit(1)
        print(f"bit-identical: all {len(digests)} runs")


if __name__ == "__main__":
    app.run(main)
