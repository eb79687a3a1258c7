"""Throughput benchmarks; every figure is printed beside the conditions it was measured in.

    python -m tools.benchmark --what=train_step --config=configs/instdisc_fashion_mnist.py
    python -m tools.benchmark --what=train_step --config=configs/cpc_audio_espeak.py \
        --config.dataset.data_dir=data/espeak8_tfrecords
    python -m tools.benchmark --what=input --jpeg_records=512 --image_size=224
    python -m tools.benchmark --what=input --skip_bad_records   # vs the JPEG body check
    python -m tools.benchmark --what=count --count_records=100000
    python -m tools.benchmark --what=nce_bank
    python -m tools.benchmark --what=knn --knn_queries=10000
    python -m tools.benchmark --what=replicas --config=configs/instdisc_fashion_mnist.py

* ``train_step``: images/s and steps/s of the method's compiled train step on
  batches already in memory, for per-sample and shared negatives.
* ``input``: images/s of the ImageNet TFRecord training pipeline (decode and
  crop on the encoded JPEG, flip, colour jitter) on synthetic ImageNet-size JPEGs;
  ``--skip_bad_records`` alternates it with the full JPEG decode check that
  skipping runs.
* ``count``: seconds to count ``--count_records`` small records in 16 shards
  from the frame headers (what the readers do) against reading every record
  through ``tf.data`` in Python (what they did before).
* ``nce_bank``: time of the InstDisc scoring + NCE loss + bank update for bank
  sizes from 10^4 to 1.28 * 10^6 rows (it should not grow with N).
* ``knn``: weighted-kNN evaluation (k=200) of ``--knn_queries`` 128-d queries
  against an ImageNet-size bank of 1.28 * 10^6 rows.
* ``replicas``: the train step through ``fit``'s distribution path on 1 and on 2
  replicas (MirroredStrategy over the CPU split into two logical devices) with
  the same global batch. On one CPU both replicas share its cores, so this
  measures the cost of the all-reduces and gathers, not a speed-up.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags
from ml_collections import config_flags

from tf_contrastive import trainer
from tf_contrastive.core import distribute
from tf_contrastive.core.config import base_config
from tf_contrastive.data import imagenet, pipeline, records
from tf_contrastive.memory import MemoryBank
from tf_contrastive.methods import get_method

_CONFIG = config_flags.DEFINE_config_file("config", trainer.DEFAULT_CONFIG, "Config file.")
flags.DEFINE_enum("what", "all",
                  ["all", "train_step", "input", "count", "nce_bank", "knn", "replicas"],
                  "Benchmark.")
flags.DEFINE_integer("count_records", 100_000, "Records for the count benchmark.")
flags.DEFINE_bool("skip_bad_records", False,
                  "Input benchmark: alternate dataset.skip_bad_records off and on.")
flags.DEFINE_integer("knn_queries", 10_000, "Queries for the knn benchmark.")
flags.DEFINE_integer("steps", 20, "Timed steps (after warm-up).")
flags.DEFINE_integer("warmup", 3, "Untimed steps first (tracing, autotuning).")
flags.DEFINE_integer("jpeg_records", 512, "Synthetic JPEG records for the input benchmark.")
flags.DEFINE_integer("image_size", 224, "Crop size for the input benchmark.")
flags.DEFINE_integer("batch_size", 128, "Batch for the input and nce_bank benchmarks.")
FLAGS = flags.FLAGS


def _conditions() -> str:
    threads = (tf.config.threading.get_inter_op_parallelism_threads(),
               tf.config.threading.get_intra_op_parallelism_threads())
    return f"cpus={os.cpu_count()} tf={tf.__version__} inter/intra threads={threads}"


def _timed(run, steps: int, warmup: int, wait) -> float:
    """Seconds for ``steps`` calls of ``run(i)`` after ``warmup`` untimed ones;
    ``wait(last output)`` blocks until the device has finished."""
    for i in range(warmup):
        run(i)
    t0 = time.perf_counter()
    for i in range(steps):
        out = run(i)
    wait(out)
    return time.perf_counter() - t0


def bench_train_step(cfg, steps: int, warmup: int) -> None:
    info = pipeline.describe(cfg.dataset)
    spec = get_method(cfg.method)
    batches = []
    it = iter(pipeline.build_dataset(cfg, view_kind=spec.view_kind(cfg)))
    for _ in range(min(steps + warmup, 8)):
        batches.append(next(it))
    # Per-sample vs shared negatives, for the methods with that option (InstDisc, CMC).
    method_cfg = cfg.get(cfg.method)
    has_shared = method_cfg is not None and "shared_negatives" in method_cfg
    for shared in ((False, True) if has_shared else (None,)):
        if shared is not None:
            method_cfg.shared_negatives = shared
        model, _ = trainer.build_model(cfg, distribute.make_strategy("default"), info, 1000)
        step = tf.function(model.train_step, jit_compile=cfg.jit_compile)
        dt = _timed(lambda i, step=step: step(batches[i % len(batches)]), steps, warmup,
                    lambda out: float(out["loss"]))
        b = cfg.train.batch_size
        what = (f"K={method_cfg.num_negatives} loss={method_cfg.loss} "
                f"shared_negatives={shared}" if shared is not None else "")
        unit = "windows" if cfg.dataset.name == "audio" else "images"
        print(f"train_step method={cfg.method} backbone={cfg.model.backbone} width="
              f"{cfg.model.width} input={info.image_shape} batch={b} {what} "
              f"jit={cfg.jit_compile} precision={cfg.mixed_precision}: "
              f"{steps * b / dt:.1f} {unit}/s, {steps / dt:.2f} steps/s "
              f"[{_conditions()}]", flush=True)


def _synthetic_jpeg(rng: np.random.Generator, h: int, w: int) -> bytes:
    """A smooth colour field plus mild noise: compresses like a photo (~30-80 KB)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([np.sin(xx / rng.uniform(20, 80) + rng.uniform(0, 6)),
                     np.cos(yy / rng.uniform(20, 80) + rng.uniform(0, 6)),
                     np.sin((xx + yy) / rng.uniform(30, 90))], axis=-1)
    img = (base * 80 + 128 + rng.normal(0, 12, size=(h, w, 3))).clip(0, 255).astype(np.uint8)
    return tf.io.encode_jpeg(img, quality=90).numpy()


def bench_input(n_records: int, image_size: int, batch: int, steps: int, warmup: int,
                check: bool = False, rounds: int = 3) -> None:
    """With ``check``, rounds alternate skip_bad_records off and on (the JPEG body
    check) in one process, so both see the same machine load."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        shards = 8
        sizes = []
        names = [f"train-{s:05d}-of-{shards:05d}" for s in range(shards)]
        names.append("validation-00000-of-00001")  # describe() wants both splits
        for s, name in enumerate(names):
            with tf.io.TFRecordWriter(os.path.join(d, name)) as w:
                for i in range(s, n_records if s < shards else 8, shards):
                    h, wd = int(rng.integers(300, 500)), int(rng.integers(375, 500))
                    enc = _synthetic_jpeg(rng, h, wd)
                    sizes.append(len(enc))
                    w.write(imagenet.make_example(enc, 1 + i % 1000, "n0", "x", h, wd,
                                                  f"{i}.JPEG"))
        cfg = base_config()
        cfg.dataset.name = "imagenet"
        cfg.dataset.data_dir = d
        cfg.dataset.image_size = image_size
        cfg.train.batch_size = batch
        total = pipeline.describe(cfg.dataset).num_train
        settings = [False, True] * rounds if check else [False]
        rates = {False: [], True: []}
        for skip_bad in settings:
            cfg.dataset.skip_bad_records = skip_bad
            it = iter(pipeline.build_dataset(cfg))
            for _ in range(warmup):
                next(it)
            t0 = time.perf_counter()
            for _ in range(steps):
                next(it)["image"].numpy()
            rates[skip_bad].append(steps * batch / (time.perf_counter() - t0))
            del it
        for skip_bad in (False, True) if check else (False,):
            r = rates[skip_bad]
            print(f"input imagenet-tfrecord records={total} mean_jpeg_kb="
                  f"{np.mean(sizes) / 1024:.0f} crop={image_size} batch={batch} views=1 "
                  f"skip_bad_records={skip_bad}: {np.median(r):.0f} images/s (median of "
                  f"{' '.join(f'{x:.0f}' for x in r)}) [{_conditions()}]", flush=True)


def bench_count(n_records: int, shards: int = 16) -> None:
    with tempfile.TemporaryDirectory() as d:
        paths = [os.path.join(d, f"train-{s:05d}-of-{shards:05d}") for s in range(shards)]
        rng = np.random.default_rng(0)
        for s, path in enumerate(paths):
            with tf.io.TFRecordWriter(path) as w:
                for _ in range(s, n_records, shards):
                    w.write(rng.bytes(int(rng.integers(50, 150))))
        t0 = time.perf_counter()
        before = sum(sum(1 for _ in tf.data.TFRecordDataset(p)) for p in paths)
        t1 = time.perf_counter()
        after = sum(s.records for s in records.scan_shards(paths))
        t2 = time.perf_counter()
        assert before == after == n_records, (before, after, n_records)
        print(f"count records={n_records} shards={shards} bytes_per_record=50-150: "
              f"tf.data in Python {t1 - t0:.2f} s, frame headers {t2 - t1:.2f} s "
              f"({(t1 - t0) / (t2 - t1):.0f}x) [{_conditions()}]", flush=True)


def bench_nce_bank(batch: int, steps: int, warmup: int) -> None:
    from tf_contrastive.losses.nce import estimate_z, nce_loss

    k, dim, tau = 4096, 128, 0.07
    for n in (10_000, 100_000, 1_281_167):
        bank = MemoryBank(n, dim)
        for shared in (False, True):

            @tf.function
            def step(feats, ids, step_no, bank=bank, shared=shared, n=n):
                seed = tf.stack([tf.constant(0, tf.int64), tf.cast(step_no, tf.int64)])
                rows = 1 if shared else batch
                noise = tf.random.stateless_uniform([rows, k], seed, 0, n, dtype=tf.int32)
                pos = tf.reduce_sum(feats * bank.gather(ids), -1) / tau
                if shared:
                    neg = tf.matmul(feats, bank.gather(noise[0]), transpose_b=True) / tau
                else:
                    neg = tf.einsum("bd,bkd->bk", feats, bank.gather(noise)) / tau
                loss = nce_loss(pos, neg, estimate_z(pos, neg, n), n)
                bank.update(ids, feats, 0.5)
                return loss

            feats = tf.math.l2_normalize(tf.random.normal([batch, dim]), axis=1)
            ids = tf.range(batch)
            ms = _timed(lambda i, step=step, x=feats, y=ids: step(x, y, tf.constant(i)), steps, warmup,
                        float) / steps * 1000
            print(f"nce_bank N={n} D={dim} K={k} batch={batch} shared_negatives={shared}: "
                  f"{ms:.1f} ms/step, bank {n * dim * 4 / 2**20:.0f} MiB per replica "
                  f"[{_conditions()}]", flush=True)


def bench_knn(queries: int, n: int = 1_281_167, dim: int = 128, k: int = 200) -> None:
    from tf_contrastive.eval.knn import knn_accuracy

    rng = np.random.default_rng(0)

    def unit(rows):
        x = rng.standard_normal((rows, dim), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    bank = tf.constant(unit(n))
    labels = tf.constant(rng.integers(0, 1000, n).astype(np.int32))
    q = unit(queries)
    q_labels = rng.integers(0, 1000, queries)
    knn_accuracy(q[:1024], q_labels[:1024], bank, labels, 1000, k=k)  # trace
    t0 = time.perf_counter()
    knn_accuracy(q, q_labels, bank, labels, 1000, k=k)
    dt = time.perf_counter() - t0
    print(f"knn bank={n}x{dim} queries={queries} k={k}: {dt:.1f} s, {queries / dt:.0f} "
          f"queries/s (50000 ImageNet validation images: ~{50_000 / (queries / dt) / 60:.1f} "
          f"min) [{_conditions()}]", flush=True)


def bench_replicas(cfg, steps: int, warmup: int) -> None:
    info = pipeline.describe(cfg.dataset)
    spec = get_method(cfg.method)
    for strategy in (tf.distribute.OneDeviceStrategy("/cpu:0"),
                     tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])):
        model, _ = trainer.build_model(cfg, strategy, info, 1000)
        ds = strategy.distribute_datasets_from_function(
            lambda ctx: pipeline.build_dataset(cfg, ctx, view_kind=spec.view_kind(cfg)))
        batches = iter(ds)
        cached = [next(batches) for _ in range(4)]

        @tf.function
        def step(batch, model=model, strategy=strategy):
            return strategy.run(model.train_step, args=(batch,))

        dt = _timed(lambda i, step=step, cached=cached: step(cached[i % 4]), steps, warmup,
                    lambda out, strategy=strategy: tf.nest.map_structure(
                        lambda t: t.numpy() if hasattr(t, "numpy") else t,
                        strategy.experimental_local_results(out)))
        b = cfg.train.batch_size
        print(f"replicas={strategy.num_replicas_in_sync} method={cfg.method} backbone="
              f"{cfg.model.backbone} width={cfg.model.width} input={info.image_shape} global "
              f"batch={b} sync_bn={cfg.model.sync_bn}: {steps * b / dt:.1f} images/s, "
              f"{steps / dt:.2f} steps/s [{_conditions()}]", flush=True)


def main(argv):
    del argv
    if FLAGS.what == "replicas":  # before TensorFlow initialises its devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    cfg = _CONFIG.value
    if FLAGS.what in ("all", "train_step"):
        bench_train_step(cfg, FLAGS.steps, FLAGS.warmup)
    if FLAGS.what in ("all", "input"):
        bench_input(FLAGS.jpeg_records, FLAGS.image_size, FLAGS.batch_size, FLAGS.steps,
                    FLAGS.warmup, FLAGS.skip_bad_records)
    if FLAGS.what in ("all", "count"):
        bench_count(FLAGS.count_records)
    if FLAGS.what in ("all", "nce_bank"):
        bench_nce_bank(FLAGS.batch_size, FLAGS.steps, FLAGS.warmup)
    if FLAGS.what in ("all", "knn"):
        bench_knn(FLAGS.knn_queries)
    if FLAGS.what == "replicas":
        bench_replicas(cfg, FLAGS.steps, FLAGS.warmup)


if __name__ == "__main__":
    app.run(main)
