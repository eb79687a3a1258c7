"""Converts a folder of aligned view images into multi-view TFRecords for CMC.

    python tools/build_multiview_tfrecords.py --input_dir=/data/nyu --output_dir=/data/nyu-tfr \
        --views=rgb,depth,normals,seg --train_shards=16 --validation_shards=4

Input: ``<input_dir>/<split>/<view>/<stem>.<png|jpg>`` for split in train and
validation (``val`` accepted), one image per instance and view, aligned by file
stem (the NYU-Depth layout: RGB, depth, surface normals, segmentation). An
optional ``<input_dir>/<split>/labels.txt`` holds ``<stem> <0-based label>``
lines, one for every stem of the split. Images are stored as they are (PNG keeps
16-bit-free 8-bit depth maps lossless). The schema is in
tf_contrastive/data/multiview.py; ``classes.json`` records the class count
(max label + 1; 0 when no split has a labels.txt).
"""

from __future__ import annotations

import concurrent.futures
import json
import os

from absl import app, flags

from tf_contrastive.data.imagenet import COUNTS_FILE
from tf_contrastive.data.labels import write_classes
from tf_contrastive.data.multiview import make_multiview_example
from tools.build_imagenet_tfrecords import Progress

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Flags live here, not at import, so tests can import the converter."""
    flags.DEFINE_string("input_dir", None, "Root with <split>/<view>/<stem>.<ext>.")
    flags.DEFINE_string("output_dir", None, "Where the shards are written.")
    flags.DEFINE_list("views", None, "View names, core view first (e.g. rgb,depth).")
    flags.DEFINE_integer("train_shards", 16, "Training shards.")
    flags.DEFINE_integer("validation_shards", 4, "Validation shards.")
    flags.DEFINE_integer("num_threads", 4, "Writer threads.")
EXTS = (".png", ".jpg", ".jpeg")


def list_instances(split_dir: str, views: list[str]) -> list[tuple[str, dict[str, str]]]:
    """[(stem, {view: path})] sorted by stem; a stem missing from a view is an error."""
    per_view = {}
    for v in views:
        d = os.path.join(split_dir, v)
        if not os.path.isdir(d):
            raise FileNotFoundError(f"--input_dir: {d} is missing (view {v!r})")
        per_view[v] = {os.path.splitext(f)[0]: os.path.join(d, f) for f in os.listdir(d)
                       if f.lower().endswith(EXTS)}
    stems = set(per_view[views[0]])
    for v in views[1:]:
        missing = sorted(stems ^ set(per_view[v]))
        if missing:
            raise ValueError(f"{split_dir}: view {v!r} and {views[0]!r} disagree on "
                             f"{len(missing)} instances, e.g. {missing[:3]}")
    return [(s, {v: per_view[v][s] for v in views}) for s in sorted(stems)]


def _labels(split_dir: str) -> dict[str, int]:
    path = os.path.join(split_dir, "labels.txt")
    if not os.path.exists(path):
        return {}
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise ValueError(f"{path}:{n}: expected '<stem> <label>' with a label "
                                 f">= 0, got {line!r}")
            out[parts[0]] = int(parts[1])
    return out


def write_split(split_dir: str, name: str, views: list[str], shards: int, output_dir: str,
                threads: int) -> dict:
    import tensorflow as tf

    items = list_instances(split_dir, views)
    labels = _labels(split_dir)
    unlabeled = [stem for stem, _ in items if labels and stem not in labels]
    if unlabeled:
        raise ValueError(f"{os.path.join(split_dir, 'labels.txt')}: no label for "
                         f"{len(unlabeled)} instances, e.g. {unlabeled[:3]}")
    bounds = [round(i * len(items) / shards) for i in range(shards + 1)]
    progress = Progress(len(items), name)

    def shard(k):
        fname = f"{name}-{k:05d}-of-{shards:05d}"
        path = os.path.join(output_dir, fname)
        with tf.io.TFRecordWriter(path + ".tmp") as w:
            for pos in range(bounds[k], bounds[k + 1]):
                stem, paths = items[pos]
                data = {}
                for v, p in paths.items():
                    with open(p, "rb") as f:
                        data[v] = f.read()
                    try:
                        tf.io.decode_image(data[v], expand_animations=False)
                    except tf.errors.InvalidArgumentError as e:
                        raise ValueError(f"{p}: not a decodable image") from e
                w.write(make_multiview_example(data, pos, labels.get(stem, -1)))
                progress.add()
        os.replace(path + ".tmp", path)
        return fname, {"records": bounds[k + 1] - bounds[k], "bytes": os.path.getsize(path)}

    with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
        return dict(pool.map(shard, range(shards)))


def convert(input_dir: str, output_dir: str, views: list[str], train_shards: int,
            validation_shards: int, threads: int = 4) -> dict:
    if len(views) < 2:
        raise ValueError(f"--views: need at least two views, got {views}")
    os.makedirs(output_dir, exist_ok=True)
    val = os.path.join(input_dir, "validation")
    if not os.path.isdir(val):
        val = os.path.join(input_dir, "val")
    counts = write_split(os.path.join(input_dir, "train"), "train", views, train_shards,
                         output_dir, threads)
    counts.update(write_split(val, "validation", views, validation_shards, output_dir, threads))
    with open(os.path.join(output_dir, COUNTS_FILE), "w") as f:
        json.dump(counts, f, indent=1, sort_keys=True)
    found = [y for d in (os.path.join(input_dir, "train"), val) for y in _labels(d).values()]
    write_classes(output_dir, max(found) + 1 if found else 0, 0)
    return counts


def main(argv):
    del argv
    if not (FLAGS.input_dir and FLAGS.output_dir and FLAGS.views):
        raise app.UsageError("--input_dir, --output_dir and --views are required")
    counts = convert(FLAGS.input_dir, FLAGS.output_dir, FLAGS.views, FLAGS.train_shards,
                     FLAGS.validation_shards, FLAGS.num_threads)
    print(f"wrote {sum(v['records'] for v in counts.values())} records to {FLAGS.output_dir}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
