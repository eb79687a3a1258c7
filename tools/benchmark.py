"""Throughput benchmarks; every figure is printed beside the conditions it was measured in.

    python -m tools.benchmark --what=train_step --config=configs/instdisc_fashion_mnist.py
    python -m tools.benchmark --what=train_step --config=configs/cpc_audio_espeak.py \
        --config.dataset.data_dir=data/espeak8_tfrecords
    python -m tools.benchmark --what=input --jpeg_records=512 --image_size=224
    python -m tools.benchmark --what=input --check_jpegs   # with and without the JPEG body check
    python -m tools.benchmark --what=count --count_records=100000
    python -m tools.benchmark --what=nce_bank
    python -m tools.benchmark --what=knn --knn_queries=10000
    python -m tools.benchmark --what=replicas --config=configs/instdisc_fashion_mnist.py

* ``train_step``: images/s and steps/s of the method's compiled train step on
  batches already in memory, for per-sample and shared negatives.
* ``input``: images/s of the ImageNet TFRecord training pipeline (decode and
  crop on the encoded JPEG, flip, colour jitter) on synthetic ImageNet-size JPEGs;
  ``--check_jpegs`` alternates it with and without the full JPEG decode check
  (``dataset.check_jpegs``, on by default).
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

from tf_contrastive.core import runtime  # first: TensorFlow reads oneDNN/threads at import

# isort: split

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags
from ml_collections import config_flags

from tf_contrastive import trainer
from tf_contrastive.core import distribute
from tf_contrastive.core.config import ConfigNameParser, base_config
from tf_contrastive.data import imagenet, pipeline, records
from tf_contrastive.memory import MemoryBank
from tf_contrastive.methods import get_method

_CONFIG = config_flags.DEFINE_config_file("config", trainer.DEFAULT_CONFIG,
                                          "Config file or shipped config name.")
flags.FLAGS["config"].parser = ConfigNameParser("config", lock_config=True)
flags.DEFINE_enum("what", "all", ["all", "train_step", "input", "count", "nce_bank", "knn",
                                  "replicas", "settings", "torch_step", "torch_input",
                                  "tf_worker"],
                  "Benchmark (tf_worker: the TF side of torch_step/torch_input, driven "
                  "over stdin by the parent).")
flags.DEFINE_integer("count_records", 100_000, "Records for the count benchmark.")
flags.DEFINE_integer("count_bytes", 0, "Count benchmark: bytes per record (0: 50-150 "
                     "random bytes; ~110000 is an ImageNet JPEG record).")
flags.DEFINE_bool("check_jpegs", False,
                  "Input benchmark: alternate dataset.check_jpegs off and on.")
flags.DEFINE_integer("knn_queries", 10_000, "Queries for the knn benchmark.")
flags.DEFINE_integer("steps", 20, "Timed steps (after warm-up).")
flags.DEFINE_integer("warmup", 3, "Untimed steps first (tracing, autotuning).")
flags.DEFINE_integer("jpeg_records", 512, "Synthetic JPEG records for the input benchmark.")
flags.DEFINE_integer("image_size", 224, "Crop size for the input benchmark.")
flags.DEFINE_integer("batch_size", 128, "Batch for the input and nce_bank benchmarks.")
flags.DEFINE_enum("negatives", "both", ["both", "config"],
                  "train_step: time per-sample and shared negatives, or only the config's.")
flags.DEFINE_string("result_file", "", "train_step: also append each figure as a JSON line here.")
flags.DEFINE_list("settings_configs", [
    "configs/instdisc_fashion_mnist.py", "configs/cmc_fashion_mnist.py",
    "configs/invaspread_fashion_mnist.py", "configs/cpc_audio_espeak.py",
    "configs/cpc_image_fashion_mnist.py"], "settings: the configs whose train step is timed.")
flags.DEFINE_list("settings_variants", [
    "default", "onednn_on", "onednn_off", "xla", "bf16", "inter1"],
                  "settings: the variants to time (default = TensorFlow's own defaults).")
flags.DEFINE_bool("save", False, "settings: write the per-machine settings file the binaries "
                  "read (tf_contrastive/core/runtime.py).")
flags.DEFINE_string("settings_file", "", "settings --save: where (default: runtime's path).")
flags.DEFINE_integer("rounds", 3, "torch_step/torch_input: A B rounds per case.")
flags.DEFINE_list("torch_cases", ["instdisc_nce", "instdisc_nce_shared", "cmc_nce",
                                  "cmc_nce_shared", "invaspread"], "torch_step: the cases.")
flags.DEFINE_integer("torch_width", 64, "torch_step: ResNet-18 width (CMC: half per view).")
flags.DEFINE_integer("torch_bank", 60_000, "torch_step: bank rows N.")
flags.DEFINE_integer("torch_k", 4096, "torch_step: noise rows K.")
flags.DEFINE_integer("loader_workers", 2, "torch_input: DataLoader workers.")
FLAGS = flags.FLAGS


def _conditions(jit: bool | None = None) -> str:
    """Where a figure was measured: CPU and its relevant flags, TF's oneDNN/XLA state,
    threads (``jit``: the timed function's own jit_compile, if it has one)."""
    m, st = runtime.this_machine(), runtime.tf_state()
    xla = f"jit_compile={jit}" if jit is not None else "jit_compile=n/a"
    return (f"cpu={m.model!r} cores={m.cores} flags={m.relevant_flags()} tf={st['tf']} "
            f"oneDNN={'on' if st['onednn'] else 'off'} {xla} xla_auto_jit={st['xla_auto_jit']}"
            f" threads intra={st['intra']} inter={st['inter']}")


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
    it = iter(pipeline.build_dataset(cfg, view_spec=spec.views(cfg, info)))
    for _ in range(min(steps + warmup, 8)):
        batches.append(next(it))
    # Per-sample vs shared negatives, for the methods with that option (InstDisc, CMC).
    method_cfg = cfg.get(cfg.method)
    has_shared = method_cfg is not None and "shared_negatives" in method_cfg
    if not has_shared:
        choices = (None,)
    elif FLAGS.negatives == "config":
        choices = (bool(method_cfg.shared_negatives),)
    else:
        choices = (False, True)
    for shared in choices:
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
              f"[{_conditions(cfg.jit_compile)}]", flush=True)
        if FLAGS.result_file:
            with open(FLAGS.result_file, "a") as f:
                f.write(json.dumps({"method": cfg.method, "rate": steps * b / dt, "unit": unit,
                                    "shared": shared, "conditions": _conditions(
                                        cfg.jit_compile)}) + "\n")


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
    """With ``check``, rounds alternate dataset.check_jpegs off and on (the JPEG body
    check) in one process, so both see the same machine load; else the default (on)."""
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
        settings = [False, True] * rounds if check else [True]
        rates = {False: [], True: []}
        for check_on in settings:
            cfg.dataset.check_jpegs = check_on
            it = iter(pipeline.build_dataset(cfg))
            for _ in range(warmup):
                next(it)
            t0 = time.perf_counter()
            for _ in range(steps):
                next(it)["image"].numpy()
            rates[check_on].append(steps * batch / (time.perf_counter() - t0))
            del it
        for check_on in (False, True) if check else (True,):
            r = rates[check_on]
            print(f"input imagenet-tfrecord records={total} mean_jpeg_kb="
                  f"{np.mean(sizes) / 1024:.0f} crop={image_size} batch={batch} views=1 "
                  f"check_jpegs={check_on}: {np.median(r):.0f} images/s (median of "
                  f"{' '.join(f'{x:.0f}' for x in r)}) [{_conditions()}]", flush=True)


def bench_count(n_records: int, shards: int = 16, record_bytes: int = 0) -> None:
    with tempfile.TemporaryDirectory() as d:
        paths = [os.path.join(d, f"train-{s:05d}-of-{shards:05d}") for s in range(shards)]
        rng = np.random.default_rng(0)
        for s, path in enumerate(paths):
            with tf.io.TFRecordWriter(path) as w:
                for _ in range(s, n_records, shards):
                    w.write(rng.bytes(record_bytes or int(rng.integers(50, 150))))
        t0 = time.perf_counter()
        before = sum(sum(1 for _ in tf.data.TFRecordDataset(p)) for p in paths)
        t1 = time.perf_counter()
        after = sum(s.records for s in records.scan_shards(paths))
        t2 = time.perf_counter()
        assert before == after == n_records, (before, after, n_records)
        size = record_bytes or "50-150"
        print(f"count records={n_records} shards={shards} bytes_per_record={size}: "
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
            lambda ctx: pipeline.build_dataset(cfg, ctx, view_spec=spec.views(cfg, info)))
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


# ---- settings: each method's step under each runtime setting, one subprocess each ----

_SETTINGS_ENV = {  # variant -> (environment changes, config overrides)
    "default": ({"TF_CONTRASTIVE_RUNTIME": "off"}, []),  # TensorFlow's own defaults
    "onednn_on": ({"TF_ENABLE_ONEDNN_OPTS": "1"}, []),
    "onednn_off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, []),
    # The next three keep oneDNN as the runtime chooses without a settings file.
    "xla": ({}, ["--config.jit_compile=True"]),
    "bf16": ({}, ["--config.mixed_precision=mixed_bfloat16"]),
    "inter1": ({"TF_NUM_INTEROP_THREADS": "1"}, []),
}


def _variant_env(variant: str, scratch: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS",
                        "TF_NUM_INTEROP_THREADS", "TF_CONTRASTIVE_RUNTIME",
                        "TF_CONTRASTIVE_RUNTIME_SET")}
    # A settings file saved earlier must not steer what is being measured.
    env["TF_CONTRASTIVE_SETTINGS"] = os.path.join(scratch, "no-settings.json")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(_SETTINGS_ENV[variant][0])
    return env


def _geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def bench_settings(configs, variants, steps: int, warmup: int, save: bool,
                   settings_file: str) -> dict:
    unknown = sorted(set(variants) - set(_SETTINGS_ENV))
    if unknown:
        raise app.UsageError(f"--settings_variants: unknown {unknown}; known: "
                             f"{sorted(_SETTINGS_ENV)}")
    table: dict[str, dict[str, float]] = {}
    units = {}
    with tempfile.TemporaryDirectory() as scratch:
        for config in configs:
            name = os.path.splitext(os.path.basename(config.split(":")[0]))[0]
            table[name] = {}
            for variant in variants:
                out = os.path.join(scratch, f"{name}-{variant}.jsonl")
                cmd = [sys.executable, "-m", "tools.benchmark", "--what=train_step",
                       f"--config={config}", f"--steps={steps}", f"--warmup={warmup}",
                       "--negatives=config", f"--result_file={out}",
                       *_SETTINGS_ENV[variant][1]]
                proc = subprocess.run(cmd, env=_variant_env(variant, scratch),
                                      capture_output=True, text=True)
                if proc.returncode != 0 or not os.path.exists(out):
                    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"settings {name} {variant}: failed ({tail[:300]})", flush=True)
                    table[name][variant] = float("nan")
                    continue
                with open(out) as f:
                    res = json.loads(f.readline())
                table[name][variant] = res["rate"]
                units[name] = res["unit"]
                print(f"settings {name} {variant}: {res['rate']:.1f} {res['unit']}/s "
                      f"[{res['conditions']}]", flush=True)
    print(f"\ntrain step, {steps} timed steps after {warmup} (ratio to 'default' = "
          f"TensorFlow's own settings) [{_conditions()}]")
    print("| config | unit | " + " | ".join(variants) + " |")
    print("| --- | --- |" + " --- |" * len(variants))
    for name, row in table.items():
        base = row.get("default")
        cells = []
        for v in variants:
            r = row.get(v, float("nan"))
            ratio = f" ({r / base:.2f}x)" if base and base == base and r == r else ""
            cells.append(f"{r:.1f}{ratio}")
        print(f"| {name} | {units.get(name, '?')}/s | " + " | ".join(cells) + " |")
    chosen = _save_settings(table, settings_file) if save else None
    return {"table": table, "chosen": chosen}


def _ok(x) -> bool:
    return isinstance(x, float | int) and x == x and x > 0


def _save_settings(table, settings_file: str) -> dict:
    """The per-machine choice from the table, written where runtime.py reads it.

    oneDNN: on unless the geomean over the configs of (on / off) is below 1. XLA: for
    the methods whose step ran >= 1.05x faster with it. Inter-op threads 1: if that
    was >= 1.05x faster in geomean. A setting that was not measured is left out, so
    the runtime's documented default applies to it.
    """
    machine = runtime.this_machine()
    tf_on = machine.tf_onednn_default

    def col(row, name):
        if _ok(row.get(name)):
            return row[name]
        # "default" is TensorFlow's own setting: it stands for the oneDNN column it equals.
        if name == ("onednn_on" if tf_on else "onednn_off") and _ok(row.get("default")):
            return row["default"]
        return None

    settings = {"version": runtime.SETTINGS_VERSION, "machine": machine.key,
                "cpu": machine.model, "tf": tf.__version__,
                "written": time.strftime("%Y-%m-%d %H:%M:%S"),
                "table": {n: {v: (r if _ok(r) else None) for v, r in row.items()}
                          for n, row in table.items()}}
    ratios = [col(r, "onednn_on") / col(r, "onednn_off") for r in table.values()
              if col(r, "onednn_on") and col(r, "onednn_off")]
    notes = []
    if ratios:
        g = _geomean(ratios)
        settings["onednn"] = g >= 1.0
        settings["onednn_reason"] = f"oneDNN on {g:.2f}x off (geomean of {len(ratios)} steps)"
        notes.append(f"oneDNN {'on' if g >= 1.0 else 'off'} ({settings['onednn_reason']})")
    else:
        notes.append("oneDNN not measured (runtime default)")
    # xla / bf16 / inter1 ran with the runtime's oneDNN choice: compare with that column.
    base = "onednn_on" if runtime.decide(machine, {}).onednn else "default"
    xla = [(n, r["xla"] / col(r, base)) for n, r in table.items()
           if _ok(r.get("xla")) and col(r, base)]
    settings["jit_methods"] = sorted(name_method(n) for n, x in xla if x >= 1.05)
    notes.append(f"XLA for {settings['jit_methods'] or 'no method'} ("
                 + (", ".join(f"{n} {x:.2f}x" for n, x in xla) or "not measured") + ")")
    inter = [r["inter1"] / col(r, base) for r in table.values()
             if _ok(r.get("inter1")) and col(r, base)]
    if inter and _geomean(inter) >= 1.05:
        settings["inter_op_threads"] = 1
    notes.append(f"inter-op threads {settings.get('inter_op_threads', 'TF default')} ("
                 + (f"inter1 {_geomean(inter):.2f}x" if inter else "not measured") + ")")
    path = settings_file or runtime.settings_path()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(settings, f, indent=1)
    print(f"settings saved to {path}: " + "; ".join(notes), flush=True)
    return settings


def name_method(config_name: str) -> str:
    """The method a config file trains (configs are named <method>_<dataset>.py)."""
    from tf_contrastive.methods import METHODS

    for method in sorted(METHODS, key=len, reverse=True):
        if config_name.startswith(method):
            return method
    return config_name


# ---- the TF side of torch_step / torch_input: a persistent worker driven over stdin ----

def _tf_case(name: str, batch: int, width: int, k: int, n: int):
    """(train step, batches, images per step) of one torch_step case, on 32x32x3 data."""
    cfg = base_config()
    method = name.split("_")[0]
    cfg.method = method
    cfg.model.width = width
    cfg.train.batch_size = batch
    if method in ("instdisc", "cmc"):
        sec = cfg[method]
        sec.loss, sec.num_negatives, sec.temperature = "nce", k, 0.07
        sec.shared_negatives = name.endswith("_shared")
    if method == "cmc":
        cfg.cmc.views = "lab"
    info = pipeline.DatasetInfo(num_train=n, num_eval=0, num_classes=10, image_shape=(32, 32, 3),
                                mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    model, _ = trainer.build_model(cfg, distribute.make_strategy("default"), info, 1000)
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(4):
        ids = tf.constant(rng.permutation(n)[:batch].astype(np.int32))
        if method == "cmc":
            b = {"view_l": rng.random((batch, 32, 32, 1), np.float32),
                 "view_ab": rng.random((batch, 32, 32, 2), np.float32)}
        elif method == "invaspread":
            b = {"view_0": rng.random((batch, 32, 32, 3), np.float32),
                 "view_1": rng.random((batch, 32, 32, 3), np.float32)}
        else:
            b = {"image": rng.random((batch, 32, 32, 3), np.float32)}
        b = {key: tf.constant(v) for key, v in b.items()}
        b["index"] = ids
        batches.append(b)
    step = tf.function(model.train_step, jit_compile=cfg.jit_compile)
    return step, batches, batch * (2 if method in ("cmc", "invaspread") else 1)


def tf_worker() -> None:
    """JSON commands on stdin, one JSON answer per line (tools/torch_reference.py's protocol)."""
    from tf_contrastive.losses.invaspread import invaspread_loss
    from tf_contrastive.losses.nce import nce_loss
    from tools.torch_reference import fixed_scores

    st = runtime.tf_state()
    print(json.dumps({"ready": True, "tf": st["tf"], "intra": st["intra"], "inter": st["inter"],
                      "onednn": st["onednn"], "conditions": _conditions()}), flush=True)
    cases = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "nce_check":
            pos, neg, feats = fixed_scores(cmd["seed"])
            b = feats.shape[0] // 2
            rows = tf.range(2 * b)
            out = {"nce": float(nce_loss(tf.constant(pos), tf.constant(neg),
                                         tf.constant(cmd["z"], tf.float32), cmd["n"])),
                   "invaspread": float(invaspread_loss(tf.constant(feats), tf.constant(feats),
                                                       rows, (rows + b) % (2 * b), 0.1))}
        elif cmd["cmd"] == "step":
            if cmd["case"] not in cases:
                step, batches, per = _tf_case(cmd["case"], cmd["batch"], cmd["width"], cmd["k"],
                                              cmd["n"])
                for i in range(cmd["warmup"]):
                    step(batches[i % 4])
                cases[cmd["case"]] = (step, batches, per)
            step, batches, per = cases[cmd["case"]]
            t0 = time.perf_counter()
            for i in range(cmd["steps"]):
                out_t = step(batches[i % 4])
            loss = float(out_t["loss"])
            out = {"seconds": time.perf_counter() - t0, "images": cmd["steps"] * per,
                   "loss": loss}
        elif cmd["cmd"] == "input":
            # A fresh pipeline per round, deleted after it: nothing prefetches while the
            # other framework is being timed.
            cfg = base_config()
            cfg.dataset.name = "imagenet"
            cfg.dataset.data_dir = cmd["data_dir"]
            cfg.dataset.image_size = cmd["image_size"]
            cfg.train.batch_size = cmd["batch"]
            it = iter(pipeline.build_dataset(cfg))
            for _ in range(cmd["warmup"]):
                next(it)
            t0 = time.perf_counter()
            for _ in range(cmd["steps"]):
                x = next(it)["image"].numpy()
            dt = time.perf_counter() - t0
            del it
            out = {"seconds": dt, "images": cmd["steps"] * x.shape[0], "shape": list(x.shape)}
        elif cmd["cmd"] == "quit":
            break
        else:
            out = {"error": f"unknown command {cmd['cmd']!r}"}
        print(json.dumps(out), flush=True)


class _Worker:
    """A child process answering one JSON line per JSON command."""

    def __init__(self, name: str, cmd: list[str]):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        self.name = name
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)
        self.ready = self._read()

    def _read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.name} worker exited (code {self.proc.wait()})")
            if line.startswith("{"):
                out = json.loads(line)
                if "error" in out:
                    raise RuntimeError(f"{self.name} worker: {out['error']}")
                return out

    def ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write('{"cmd": "quit"}\n')
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)


def _workers():
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise app.UsageError("torch_step/torch_input need PyTorch: pip install .[bench] (see "
                             "README, 'Benchmarks')") from e
    tf_w = _Worker("TF", [sys.executable, "-m", "tools.benchmark", "--what=tf_worker"])
    torch_w = _Worker("torch", [sys.executable, "-m", "tools.torch_reference"])
    print(f"TF worker: tf={tf_w.ready['tf']} oneDNN={'on' if tf_w.ready['onednn'] else 'off'} "
          f"threads intra={tf_w.ready['intra']} inter={tf_w.ready['inter']} "
          f"[{tf_w.ready['conditions']}]", flush=True)
    print(f"torch worker: torch={torch_w.ready['torch']} threads intra={torch_w.ready['intra']} "
          f"inter={torch_w.ready['inter']} mkldnn={torch_w.ready['mkldnn']} "
          f"OMP_NUM_THREADS={torch_w.ready['OMP_NUM_THREADS'] or 'unset'}", flush=True)
    return tf_w, torch_w


def _alternate(label: str, rounds: int, run_tf, run_torch, unit: str) -> float:
    """A B A B ...: each round times TF then torch; prints each and the median ratio."""
    ratios = []
    for r in range(rounds):
        a, b = run_tf(), run_torch()
        ra, rb = a["images"] / a["seconds"], b["images"] / b["seconds"]
        ratios.append(ra / rb)
        print(f"{label} round {r + 1}: TF {ra:.1f} {unit}/s, torch {rb:.1f} {unit}/s, "
              f"TF/torch {ra / rb:.2f}", flush=True)
    med = statistics.median(ratios)
    print(f"{label}: median TF/torch {med:.2f} over {rounds} rounds "
          f"({', '.join(f'{x:.2f}' for x in ratios)})", flush=True)
    return med


def bench_torch_step(cases, rounds: int, steps: int, warmup: int, batch: int, width: int,
                     k: int, n: int) -> dict:
    tf_w, torch_w = _workers()
    try:
        pos, neg, _ = __import__("tools.torch_reference", fromlist=["x"]).fixed_scores(0)
        z = float(np.exp(np.concatenate([pos[:, None], neg], 1).astype(np.float64)).mean() * n)
        a = tf_w.ask(cmd="nce_check", seed=0, z=z, n=n)
        b = torch_w.ask(cmd="nce_check", seed=0, z=z, n=n)
        for key in ("nce", "invaspread"):
            diff = abs(a[key] - b[key]) / max(1.0, abs(a[key]))
            verdict = "same loss" if diff <= 1e-5 else "LOSSES DIFFER: the steps do not compare"
            print(f"loss check {key} on fixed scores (B=128, K=4096, N={n}): TF {a[key]:.7f} "
                  f"torch {b[key]:.7f} rel. diff {diff:.1e} ({verdict})", flush=True)
        medians = {}
        for case in cases:
            w = width // 2 if case.startswith("cmc") else width
            desc = (f"{case} resnet18_cifar width={w}{' x2 views' if case.startswith('cmc') else ''}"
                    f" 32x32 batch={batch}" + (f" K={k} N={n}" if "nce" in case else "")
                    + f" steps={steps}")
            cmd = dict(cmd="step", case=case, batch=batch, width=w, k=k, n=n, steps=steps,
                       warmup=warmup)
            medians[case] = _alternate(desc, rounds, lambda c=cmd: tf_w.ask(**c),
                                       lambda c=cmd: torch_w.ask(**c), "images")
        print("torch_step medians TF/torch: "
              + ", ".join(f"{c} {m:.2f}" for c, m in medians.items()) + f" [{_conditions()}]",
              flush=True)
        return medians
    finally:
        tf_w.close()
        torch_w.close()


def _write_jpegs(root: str, n: int, rng: np.random.Generator) -> list[str]:
    from PIL import Image

    files = []
    for split, count in (("train", n), ("val", 8)):
        for i in range(count):
            d = os.path.join(root, split, f"n{i % 10:08d}")
            os.makedirs(d, exist_ok=True)
            h, w = int(rng.integers(300, 500)), int(rng.integers(375, 500))
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            base = np.stack([np.sin(xx / rng.uniform(20, 80) + rng.uniform(0, 6)),
                             np.cos(yy / rng.uniform(20, 80) + rng.uniform(0, 6)),
                             np.sin((xx + yy) / rng.uniform(30, 90))], axis=-1)
            img = (base * 80 + 128 + rng.normal(0, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
            path = os.path.join(d, f"{split}_{i}.JPEG")
            Image.fromarray(img).save(path, quality=90)
            if split == "train":
                files.append(path)
    return files


def bench_torch_input(n_records: int, image_size: int, batch: int, rounds: int, steps: int,
                      warmup: int, workers: int) -> float:
    from tools.build_imagenet_tfrecords import convert

    with tempfile.TemporaryDirectory() as d:
        files = _write_jpegs(os.path.join(d, "jpeg"), n_records, np.random.default_rng(0))
        convert(os.path.join(d, "jpeg"), os.path.join(d, "tfr"), train_shards=8,
                validation_shards=1, num_threads=2)
        file_list = os.path.join(d, "files.txt")
        with open(file_list, "w") as f:
            f.write("\n".join(files))
        mean_kb = np.mean([os.path.getsize(p) for p in files]) / 1024
        tf_w, torch_w = _workers()
        try:
            desc = (f"input {n_records} JPEGs (mean {mean_kb:.0f} KB) -> crop {image_size} "
                    f"scale 0.2-1, flip, jitter 0.4, grayscale 0.2; batch={batch} "
                    f"steps={steps}; TF: imagenet TFRecords (tools/build_imagenet_tfrecords.py); "
                    f"torch: DataLoader workers={workers} PIL")
            med = _alternate(
                desc, rounds,
                lambda: tf_w.ask(cmd="input", data_dir=os.path.join(d, "tfr"),
                                 image_size=image_size, batch=batch, steps=steps,
                                 warmup=warmup),
                lambda: torch_w.ask(cmd="input", file_list=file_list, image_size=image_size,
                                    batch=batch, steps=steps, warmup=warmup, workers=workers),
                "images")
            print(f"torch_input median TF/torch {med:.2f} [{_conditions()}]", flush=True)
            return med
        finally:
            tf_w.close()
            torch_w.close()


def main(argv):
    del argv
    if FLAGS.what == "replicas":  # before TensorFlow initialises its devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    if FLAGS.what == "tf_worker":
        return tf_worker()
    print(runtime.apply().line(), flush=True)
    cfg = _CONFIG.value
    if FLAGS.what == "settings":
        bench_settings(FLAGS.settings_configs, FLAGS.settings_variants, FLAGS.steps,
                       FLAGS.warmup, FLAGS.save, FLAGS.settings_file)
    if FLAGS.what == "torch_step":
        bench_torch_step(FLAGS.torch_cases, FLAGS.rounds, FLAGS.steps, FLAGS.warmup,
                         FLAGS.batch_size, FLAGS.torch_width, FLAGS.torch_k, FLAGS.torch_bank)
    if FLAGS.what == "torch_input":
        bench_torch_input(FLAGS.jpeg_records, FLAGS.image_size, FLAGS.batch_size,
                          FLAGS.rounds, FLAGS.steps, FLAGS.warmup, FLAGS.loader_workers)
    if FLAGS.what in ("all", "train_step"):
        bench_train_step(cfg, FLAGS.steps, FLAGS.warmup)
    if FLAGS.what in ("all", "input"):
        bench_input(FLAGS.jpeg_records, FLAGS.image_size, FLAGS.batch_size, FLAGS.steps,
                    FLAGS.warmup, FLAGS.check_jpegs)
    if FLAGS.what in ("all", "count"):
        bench_count(FLAGS.count_records, record_bytes=FLAGS.count_bytes)
    if FLAGS.what in ("all", "nce_bank"):
        bench_nce_bank(FLAGS.batch_size, FLAGS.steps, FLAGS.warmup)
    if FLAGS.what in ("all", "knn"):
        bench_knn(FLAGS.knn_queries)
    if FLAGS.what == "replicas":
        bench_replicas(cfg, FLAGS.steps, FLAGS.warmup)


if __name__ == "__main__":
    app.run(main)
