"""Converts an ImageFolder tree into ImageNet TFRecords in the official TensorFlow schema.

    python tools/build_imagenet_tfrecords.py --input_dir=/data/imagenet \
        --output_dir=/data/imagenet-tfr --train_shards=1024 --validation_shards=128

Input: ``<input_dir>/train/<synset>/*.JPEG`` and ``<input_dir>/val/<synset>/*.JPEG``
(``validation/`` is accepted too). Synsets are sorted; label = 1 + position (1..1000
for ImageNet), as in tensorflow/models' build_imagenet_data.py. An optional
``--synset_text`` file of ``<synset> <human text>`` lines fills ``image/class/text``.

Training files are shuffled with a fixed seed and written in shards
``train-00000-of-01024``; each record also carries ``image/id`` (its position in
the written order, which is the id the readers derive),
``record_counts.json`` lists each shard's records and bytes so readers never
need a counting pass, and ``classes.json`` the class count, label base (1) and
synsets. PNG, grayscale and CMYK files are re-encoded as RGB JPEG.
Unreadable images fail the conversion naming the file.
"""

from __future__ import annotations

from tf_contrastive.core import runtime  # first: TensorFlow reads oneDNN/threads at import

# isort: split

import concurrent.futures
import json
import os
import random
import sys
import threading
import time

import tensorflow as tf
from absl import app, flags

from tf_contrastive.data.imagenet import COUNTS_FILE, JPEG_MAGIC, make_example
from tf_contrastive.data.labels import write_classes

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Flags live here, not at import, so tests can import the converter."""
    flags.DEFINE_string("input_dir", None, "ImageFolder root holding train/ and val/.")
    flags.DEFINE_string("output_dir", None, "Where the shards are written.")
    flags.DEFINE_integer("train_shards", 1024, "Number of training shards.")
    flags.DEFINE_integer("validation_shards", 128, "Number of validation shards.")
    flags.DEFINE_integer("num_threads", 8, "Parallel writer threads.")
    flags.DEFINE_string("synset_text", "", "Optional file of '<synset> <text>' lines.")
    flags.DEFINE_integer("seed", 12345, "Shuffle seed for the training file order.")
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".gif")


def list_split(split_dir: str) -> tuple[list[tuple[str, str]], list[str]]:
    """[(path, synset)] sorted by synset then file name, and the sorted synsets."""
    if not os.path.isdir(split_dir):
        raise FileNotFoundError(f"--input_dir: {split_dir} is not a directory")
    synsets = sorted(d for d in os.listdir(split_dir)
                     if os.path.isdir(os.path.join(split_dir, d)))
    if not synsets:
        raise FileNotFoundError(f"--input_dir: {split_dir} has no class sub-directories")
    files = []
    for s in synsets:
        for name in sorted(os.listdir(os.path.join(split_dir, s))):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                files.append((os.path.join(split_dir, s, name), s))
    return files, synsets


def to_rgb_jpeg(path: str) -> tuple[bytes, int, int]:
    """(JPEG bytes, height, width); non-JPEG, grayscale or CMYK input is re-encoded."""
    data = tf.io.read_file(path)
    try:
        if data.numpy()[:3] == JPEG_MAGIC:
            shape = tf.image.extract_jpeg_shape(data).numpy()
            if shape[2] == 3:
                tf.io.decode_jpeg(data, channels=3)  # Proves the whole payload decodes.
                return data.numpy(), int(shape[0]), int(shape[1])
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError as e:
        raise ValueError(f"{path}: not a decodable image ({e.message.splitlines()[0]})") from e
    encoded = tf.io.encode_jpeg(image, quality=95)
    return encoded.numpy(), int(image.shape[0]), int(image.shape[1])


class Progress:
    """A one-line text progress bar, safe to update from several threads."""

    def __init__(self, total: int, label: str, unit: str = "images"):
        self.total, self.label, self.unit, self.done = max(total, 1), label, unit, 0
        self.start = time.time()
        self.lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self.lock:
            self.done += n
            frac = self.done / self.total
            rate = self.done / max(time.time() - self.start, 1e-9)
            bar = "#" * int(30 * frac)
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {self.done}/{self.total} "
                             f"({rate:.0f} {self.unit}/s)")
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def write_split(files, synsets, name: str, num_shards: int, output_dir: str,
                text: dict[str, str], num_threads: int) -> dict:
    """Writes ``num_shards`` shards of ``files``; returns {shard: {records, bytes}}."""
    if num_shards < 1:
        raise ValueError(f"--{name}_shards must be >= 1, got {num_shards}")
    label_of = {s: i + 1 for i, s in enumerate(synsets)}
    bounds = [round(i * len(files) / num_shards) for i in range(num_shards + 1)]
    progress = Progress(len(files), name)

    def write_shard(k: int) -> tuple[str, dict]:
        shard = f"{name}-{k:05d}-of-{num_shards:05d}"
        path = os.path.join(output_dir, shard)
        tmp = path + ".tmp"
        with tf.io.TFRecordWriter(tmp) as writer:
            for pos in range(bounds[k], bounds[k + 1]):
                src, synset = files[pos]
                encoded, h, w = to_rgb_jpeg(src)
                writer.write(make_example(encoded, label_of[synset], synset,
                                          text.get(synset, synset), h, w,
                                          os.path.basename(src), instance_id=pos))
                progress.add()
        os.replace(tmp, path)
        return shard, {"records": bounds[k + 1] - bounds[k], "bytes": os.path.getsize(path)}

    with concurrent.futures.ThreadPoolExecutor(max(1, num_threads)) as pool:
        return dict(pool.map(write_shard, range(num_shards)))


def convert(input_dir: str, output_dir: str, train_shards: int, validation_shards: int,
            num_threads: int = 8, synset_text: str = "", seed: int = 12345) -> dict:
    """Converts both splits; returns (and writes) the record counts."""
    os.makedirs(output_dir, exist_ok=True)
    text = {}
    if synset_text:
        with open(synset_text) as f:
            for line in f:
                parts = line.strip().split(None, 1)
                if parts:
                    text[parts[0]] = parts[1] if len(parts) > 1 else parts[0]
    train_files, synsets = list_split(os.path.join(input_dir, "train"))
    random.Random(seed).shuffle(train_files)
    val_dir = os.path.join(input_dir, "val")
    if not os.path.isdir(val_dir):
        val_dir = os.path.join(input_dir, "validation")
    val_files, val_synsets = list_split(val_dir)
    unknown = sorted(set(val_synsets) - set(synsets))
    if unknown:
        raise ValueError(f"{val_dir}: classes absent from train/: {unknown[:5]}")
    counts = write_split(train_files, synsets, "train", train_shards, output_dir, text,
                         num_threads)
    counts.update(write_split(val_files, synsets, "validation", validation_shards, output_dir,
                              text, num_threads))
    with open(os.path.join(output_dir, COUNTS_FILE), "w") as f:
        json.dump(counts, f, indent=1, sort_keys=True)
    write_classes(output_dir, len(synsets), 1, synsets=synsets)
    return counts


def main(argv):
    del argv
    print(runtime.apply().line(), flush=True)
    if not FLAGS.input_dir or not FLAGS.output_dir:
        raise app.UsageError("--input_dir and --output_dir are required")
    counts = convert(FLAGS.input_dir, FLAGS.output_dir, FLAGS.train_shards,
                     FLAGS.validation_shards, FLAGS.num_threads, FLAGS.synset_text, FLAGS.seed)
    n_train = sum(v["records"] for k, v in counts.items() if k.startswith("train"))
    n_val = sum(v["records"] for k, v in counts.items() if k.startswith("validation"))
    print(f"wrote {n_train} training and {n_val} validation records to {FLAGS.output_dir}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
