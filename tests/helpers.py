"""Shared test helpers: smoke configs, test data written for real, training subprocesses.

The training runner is the training binary's ``trainer.run`` in a fresh process,
optionally with two logical CPUs (so ``config.strategy=mirrored`` has two
replicas, as on a two-GPU machine) and a SIGKILL from inside the run at a fixed
epoch and step: a real kill at a known point, never a race.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from tf_contrastive.core.config import base_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
SYNSETS = ("n01440764", "n01443537", "n01484850")


def smoke_cfg(name: str = "smoke_instdisc_digits"):
    """The ConfigDict of ``configs/<name>.py``."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def write_jpeg_folder(
    root: str, train_per_class=(5, 4, 3), val_per_class: int = 2, seed: int = 0
) -> None:
    """An ImageFolder tree (``train/``, ``val/``, one folder per synset) of real JPEGs."""
    rng = np.random.default_rng(seed)
    for split, counts in (("train", train_per_class), ("val", [val_per_class] * len(SYNSETS))):
        for synset, n in zip(SYNSETS, counts, strict=True):
            folder = os.path.join(root, split, synset)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                h, w = rng.integers(24, 60, size=2)
                image = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
                with open(os.path.join(folder, f"{synset}_{i}.JPEG"), "wb") as f:
                    f.write(tf.io.encode_jpeg(image, quality=90).numpy())


def make_audio_records(
    corpus: str, out: str, num_speakers: int = 3, utterances_per_speaker: int = 4
) -> str:
    """espeak-ng speech converted to audio TFRecords, with a phone label per 10 ms frame."""
    import soundfile as sf

    from tools.build_audio_tfrecords import convert
    from tools.make_espeak_corpus import synthesise

    paths = synthesise(
        corpus,
        num_speakers=num_speakers,
        utterances_per_speaker=utterances_per_speaker,
        seed=1,
        num_threads=2,
    )
    lines = []
    for path in paths:
        uid = os.path.splitext(os.path.basename(path))[0]
        frames = -(-sf.info(path).frames // 160)
        lines.append(" ".join([uid] + [str(k % 5) for k in range(frames)]))
    align = os.path.join(corpus, "phones.txt")
    with open(align, "w") as f:
        f.write("\n".join(lines) + "\n")
    convert(
        corpus,
        out,
        train_shards=2,
        validation_shards=1,
        validation_fraction=0.25,
        alignment=align,
        num_threads=2,
    )
    return out


_RUNNER = textwrap.dedent("""
    import json, os, signal, sys, time
    import tf_contrastive  # first, as in the binaries: before TensorFlow is imported
    from tf_contrastive.core import runtime
    from tf_contrastive.core.config import config_dir, sibling_config

    jobs, logical_cpus = json.loads(sys.argv[1]), int(sys.argv[2])
    cfgs = []  # each job's config, read once and before TensorFlow, as the train binary does
    for job in jobs:
        cfg = sibling_config(os.path.join(config_dir(), "__init__.py"), job["config"] + ".py")
        cfg.update_from_flattened_dict(job["overrides"])
        cfgs.append(cfg)
    if any(cfg.deterministic for cfg in cfgs):  # oneDNN as the train binary chooses it
        print(runtime.for_deterministic().line(), flush=True)
    import tensorflow as tf
    if logical_cpus:  # before the runtime starts, as tests/conftest.py does
        tf.config.set_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0],
            [tf.config.LogicalDeviceConfiguration() for _ in range(logical_cpus)])
    import keras
    from tf_contrastive import trainer


    class KillAt(keras.callbacks.Callback):
        def __init__(self, epoch, step):
            super().__init__()
            self.at, self.epoch = (epoch, step), None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == self.at:
                os.kill(os.getpid(), signal.SIGKILL)


    for job, cfg in zip(jobs, cfgs):
        t0 = time.perf_counter()
        kill = [KillAt(*job["kill_at"])] if job.get("kill_at") else []
        results, model = trainer.run(cfg, job["workdir"], verbose=0, callbacks=kill,
                                     return_model=True)
        replicas = model.distribute_strategy.num_replicas_in_sync
        print(f"{job['workdir']}: {replicas} replicas in sync "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
""")


def train_in_subprocess(jobs: list[dict], logical_cpus: int = 2) -> str:
    """Runs ``trainer.run`` for each job, in order, in one fresh process; returns stdout.

    A job is ``{"config": "smoke_cmc_digits", "workdir": ..., "overrides": {"train.epochs":
    2, ...}}``, optionally with ``"kill_at": (epoch, step)`` (0-based, last job only):
    the process SIGKILLs itself after that training step, and the call fails unless it
    died that way. ``logical_cpus`` splits the CPU so that ``strategy=mirrored`` has that
    many replicas (every job sees the same devices, whatever its strategy).
    """
    assert all("kill_at" not in job for job in jobs[:-1]), "only the last job can be killed"
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, json.dumps(jobs), str(logical_cpus)],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    expected = -signal.SIGKILL if jobs[-1].get("kill_at") else 0
    assert proc.returncode == expected, (proc.returncode, proc.stdout[-1000:], proc.stderr[-3000:])
    # A function AutoGraph fails on runs unconverted, with a warning a user cannot act on
    # (an empty hook's body, a helper without source): every training job here is checked.
    assert _AUTOGRAPH_FAILED not in proc.stderr, _autograph_lines(proc.stderr)
    return proc.stdout


_AUTOGRAPH_FAILED = "AutoGraph could not transform"


def _autograph_lines(stderr: str) -> str:
    lines = stderr.splitlines()
    at = [i for i, line in enumerate(lines) if _AUTOGRAPH_FAILED in line]
    return "\n".join(lines[i] + "\n" + (lines[i + 1] if i + 1 < len(lines) else "") for i in at)


def invaspread_reference(x: np.ndarray, tau: float = 0.1) -> float:
    """BatchCriterion(negM=1).forward, step by step in NumPy (x = [view0; view1])."""
    n = x.shape[0]
    reordered = np.concatenate([x[n // 2:], x[: n // 2]])
    pos = np.exp((x * reordered).sum(1) / tau)
    all_prob = np.exp(x @ x.T / tau) * (1 - np.eye(n))
    all_div = all_prob.sum(1)
    lnpmt = pos / all_div
    lnpon = np.log(1 - all_prob / all_div[:, None])
    lnpon = lnpon.sum(1) - np.log(1 - lnpmt)
    return -(np.log(lnpmt).sum() + lnpon.sum()) / n


def checkpoint_values(workdir: str, prefix: str | None = None) -> dict[str, np.ndarray]:
    """Every variable of the run's latest checkpoint (or ``prefix``), by object path.

    Left out: the save counter, and the object graph, which is metadata holding
    Keras's auto-generated names (``sgd_1/...`` in a process that built a model
    before), not state.
    """
    reader = tf.train.load_checkpoint(prefix or os.path.join(workdir, "checkpoints"))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "save_counter" not in name and name != "_CHECKPOINTABLE_OBJECT_GRAPH"
    }


def assert_bit_identical(got: dict, expected: dict) -> None:
    """Same variables, every one exactly equal."""
    assert sorted(got) == sorted(expected)
    differ = [name for name in got if not np.array_equal(got[name], expected[name])]
    assert not differ, f"{len(differ)} of {len(got)} variables differ: {differ[:10]}"


def run_module(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m <args>`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=timeout,
    )


def write_mixed_jpeg_folder(root, per_class=(5, 4, 3), val_per_class=2, seed=0):
    """An ImageFolder tree of JPEGs as ImageNet has them: a PNG under a .JPEG name, a
    grayscale JPEG, the rest RGB (40-90 px)."""
    rng = np.random.default_rng(seed)
    for split, counts in (("train", per_class), ("val", [val_per_class] * len(SYNSETS))):
        for synset, n in zip(SYNSETS, counts, strict=True):
            d = os.path.join(root, split, synset)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                h, w = rng.integers(40, 90, size=2)
                img = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
                if i == 1:  # A PNG with a .JPEG name, as a few real ImageNet files are.
                    data = tf.io.encode_png(img).numpy()
                elif i == 2:  # Grayscale JPEG.
                    data = tf.io.encode_jpeg(img[..., :1]).numpy()
                else:
                    data = tf.io.encode_jpeg(img).numpy()
                with open(os.path.join(d, f"{synset}_{i}.JPEG"), "wb") as f:
                    f.write(data)


def imagenet_cfg(data_dir, **ds):
    """A small config reading ImageNet-schema records from ``data_dir`` (32 px, batch 4)."""
    cfg = base_config()
    cfg.dataset.name = "imagenet"
    cfg.dataset.data_dir = data_dir
    cfg.dataset.image_size = 32
    cfg.dataset.shuffle_buffer = 4
    cfg.train.batch_size = 4
    cfg.eval.batch_size = 5
    for k, v in ds.items():
        setattr(cfg.dataset, k, v)
    return cfg


def rewrite_record(d, shard, index, encoded=None, drop_encoded=False):
    """Replaces (or drops) ``image/encoded`` of record ``index`` of shard ``d / shard``."""
    p = d / shard
    recs = [r.numpy() for r in tf.data.TFRecordDataset(str(p))]
    ex = tf.train.Example.FromString(recs[index])
    if drop_encoded:
        del ex.features.feature["image/encoded"]
    else:
        ex.features.feature["image/encoded"].bytes_list.value[0] = encoded
    recs[index] = ex.SerializeToString()
    with tf.io.TFRecordWriter(str(p)) as w:
        for r in recs:
            w.write(r)
    return str(p)


def write_nyu_like(root, n_train=12, n_val=4, size=24, seed=0):
    """Aligned rgb (JPEG) / depth / normals (PNG) views with labels.txt, the NYU layout
    tools/build_multiview_tfrecords.py reads; depth is the red channel."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("validation", n_val)):
        for i in range(n):
            rgb = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            depth = rgb[..., :1]  # depth = the red channel: alignment is checkable
            normals = 255 - rgb
            for view, img, enc in (("rgb", rgb, tf.io.encode_jpeg),
                                   ("depth", depth, tf.io.encode_png),
                                   ("normals", normals, tf.io.encode_png)):
                d = root / split / view
                d.mkdir(parents=True, exist_ok=True)
                ext = "jpg" if view == "rgb" else "png"
                (d / f"{i:04d}.{ext}").write_bytes(enc(img).numpy())
        (root / split / "labels.txt").write_text("".join(f"{i:04d} {i % 3}\n" for i in range(n)))
