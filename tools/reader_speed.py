"""Reading speed (images/s) of the CIFAR, STL-10, TFDS-ImageNet and image_folder readers on
full-size synthetic files in the distributed layouts, and the STL-10 stream's memory.

    python -m tools.reader_speed --workdir=/tmp/reader_speed [--readers=image_folder,...]

Files: CIFAR-10 as 5 x 10,000 + 10,000 rows (folder and .tar.gz), STL-10 with the
real sizes (5,000 / 8,000 / 100,000 images; unlabeled_X.bin is 2.76 GB), 2,000
TFDS-named and 2,000 official-schema ImageNet records of 256x256 JPEGs, an image
folder of 500 ImageNet-sized JPEGs (500x375 / 375x500 / 500x333, 10 subfolders,
smooth images plus noise, about ImageNet's bytes per image). Pixels
are random (CIFAR / STL) or smooth random images (JPEGs), so only the sizes are
realistic. Prints each figure with its batch, image size and thread settings.
"""

from __future__ import annotations

import os
import time

import numpy as np
from absl import app, flags

flags.DEFINE_string("workdir", "/tmp/reader_speed", "Where the synthetic files go.")
flags.DEFINE_integer("batches", 100, "Batches timed per stream.")
flags.DEFINE_list("readers", ["cifar10", "stl10", "imagenet", "image_folder"], "Which to time.")
FLAGS = flags.FLAGS


def _mem() -> str:
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return f"RssAnon {fields.get('RssAnon')}, RssFile {fields.get('RssFile')}"


def _write_files(root: str):
    from tests.data import distributed_files as files
    from tf_contrastive.data import imagenet

    cifar_dir = os.path.join(root, "cifar-10-batches-py")
    tgz = os.path.join(root, "cifar-10-python.tar.gz")
    if not os.path.exists(tgz):
        members = files.cifar10_batches(rows=10_000)
        files.write_folder(root, "cifar-10-batches-py", members)
        files.write_tar_gz(tgz, "cifar-10-batches-py", members)
    stl = os.path.join(root, "stl10_binary")
    if not os.path.exists(os.path.join(stl, "unlabeled_X.bin")):
        os.makedirs(stl, exist_ok=True)
        rng = np.random.default_rng(0)
        for split, n in (("train", 5000), ("test", 8000), ("unlabeled", 100_000)):
            with open(os.path.join(stl, f"{split}_X.bin"), "wb") as f:
                for start in range(0, n, 5000):
                    rng.integers(0, 256, min(5000, n - start) * files.STL_BYTES, np.uint8).tofile(f)
            if split != "unlabeled":
                rng.integers(1, 11, n, np.uint8).tofile(os.path.join(stl, f"{split}_y.bin"))
    tfds, official = os.path.join(root, "tfds"), os.path.join(root, "official")
    if not os.path.exists(tfds):
        import tensorflow as tf

        rng = np.random.default_rng(1)
        small = rng.integers(0, 256, (2000, 16, 16, 3), np.uint8)
        images = tf.cast(tf.image.resize(small, [256, 256]), tf.uint8).numpy()
        labels = np.arange(2000) % 1000
        files.write_tfds_imagenet(tfds, images, labels, shards=4)
        os.makedirs(official)
        writers = [
            tf.io.TFRecordWriter(os.path.join(official, f"train-{s:05d}-of-00004"))
            for s in range(4)
        ]
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            jpeg = tf.io.encode_jpeg(image, quality=95).numpy()
            writers[i % 4].write(
                imagenet.make_example(jpeg, int(label) + 1, "n0", "x", 256, 256, f"{i}.JPEG")
            )
        for w in writers:
            w.close()
    return cifar_dir, tgz, stl, tfds, official


def _write_image_folder(root: str, n: int = 500) -> str:
    import tensorflow as tf

    d = os.path.join(root, "image_folder")
    if os.path.isdir(d) and sum(len(f) for _, _, f in os.walk(d)) >= n:
        return d
    rng = np.random.default_rng(2)
    sizes = ((375, 500), (500, 375), (333, 500))
    for i in range(n):
        h, w = sizes[i % 3]
        coarse = rng.integers(0, 256, (1, h // 16, w // 16, 3), np.uint8)
        smooth = tf.image.resize(coarse, [h, w])[0].numpy()
        image = np.clip(smooth + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
        sub = os.path.join(d, f"n{i % 10:08d}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"img_{i:05d}.JPEG"), "wb") as f:
            f.write(tf.io.encode_jpeg(image, quality=90).numpy())
    return d


def _rate(ds, batches: int) -> tuple[float, int]:
    it = iter(ds)
    next(it)  # the first batch pays for tracing
    n, t0 = 0, time.perf_counter()
    for _ in range(batches):
        b = next(it)
        n += int(next(iter(b.values())).shape[0])
    return n / (time.perf_counter() - t0), n


def main(argv):
    del argv
    import tensorflow as tf

    from tf_contrastive.core.config import base_config
    from tf_contrastive.data import arrays, cifar, pipeline, stl10

    root = FLAGS.workdir
    os.makedirs(root, exist_ok=True)
    readers = set(FLAGS.readers)
    print(f"machine: {os.cpu_count()} cores (shared with other jobs), tf.data AUTOTUNE")

    def stream(name, data_dir, size, batch, training=True, **keys):
        cfg = base_config()
        cfg.dataset.name, cfg.dataset.data_dir, cfg.dataset.image_size = name, data_dir, size
        cfg.train.batch_size = cfg.eval.batch_size = batch
        for k, v in keys.items():
            cfg.dataset[k] = v
        return pipeline.build_dataset(cfg, training=training, split="train")

    if "image_folder" in readers:
        folder = _write_image_folder(root)
        paths = [os.path.join(r, f) for r, _, names in os.walk(folder) for f in names]
        mean_kb = np.mean([os.path.getsize(p) for p in paths]) / 1024
        for check in (True, False):
            rate, n = _rate(stream("image_folder", folder, 224, 64, check_jpegs=check),
                            FLAGS.batches)
            print(
                f"image_folder training stream ({len(paths)} JPEGs of ~500x375, {mean_kb:.0f} KB "
                f"mean, page-cached; crop -> 224 + jitter, batch 64, check_jpegs={check}): "
                f"{rate:,.0f} images/s over {n}"
            )
    if not readers & {"cifar10", "stl10", "imagenet"}:
        return
    cifar_dir, tgz, stl, tfds, official = _write_files(root)

    if "cifar10" in readers:
        for what, src in (("folder", cifar_dir), ("tar.gz", tgz)):
            t0 = time.perf_counter()
            x, _ = cifar.load("cifar10", "train", src)
            dt = time.perf_counter() - t0
            print(
                f"cifar10 load train from {what}: {len(x) / dt:,.0f} images/s ({dt:.2f} s for {len(x)})"
            )

    if "stl10" in readers:
        t0 = time.perf_counter()
        rows, _ = stl10.load("train+unlabeled", stl)
        print(
            f"stl10 open train+unlabeled ({len(rows)} images, memory-mapped): "
            f"{time.perf_counter() - t0:.3f} s; {_mem()}"
        )
        t0 = time.perf_counter()
        rows.pixel_stats()
        print(f"stl10 pixel stats over all rows: {time.perf_counter() - t0:.1f} s; {_mem()}")
        gather = arrays.gatherer(rows)
        batch = 256
        ids = tf.data.Dataset.range(10**6).map(
            lambda i: tf.random.stateless_uniform([batch], [i, 7], 0, len(rows), tf.int32)
        )
        ds = ids.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        rate, n = _rate(ds.map(lambda x: {"x": x}), FLAGS.batches)
        print(
            f"stl10 random-order batch gather ({batch} x 96x96x3, from the page cache): "
            f"{rate:,.0f} images/s over {n}; {_mem()}"
        )

    for name, data_dir, size, batch in (("cifar10", cifar_dir, 32, 256), ("stl10", stl, 96, 256)):
        if name not in readers:
            continue
        rate, n = _rate(stream(name, data_dir, size, batch), FLAGS.batches)
        print(
            f"{name} training stream (crop + jitter, {size}px, batch {batch}): "
            f"{rate:,.0f} images/s over {n}; {_mem()}"
        )
    if "imagenet" not in readers:
        return
    for layout, data_dir in (("tfds", tfds), ("official", official)):
        for training in (False, True):
            rate, n = _rate(
                stream(
                    "imagenet", data_dir, 224, 64, training, num_classes=1000, shuffle_buffer=256
                ),
                min(FLAGS.batches, 2000 // 64 - 2),
            )
            kind = "training stream (JPEG crop)" if training else "eval stream (center crop)"
            print(
                f"imagenet {layout} {kind}, 256px JPEGs -> 224, batch 64: {rate:,.0f} "
                f"images/s over {n}"
            )


if __name__ == "__main__":
    app.run(main)
