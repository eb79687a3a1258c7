"""Tries each kind of bad input and prints what the user sees, as a Markdown table.

    python -m tools.bad_inputs            # about a minute on 2 cores

Every row is produced here and now: the input is built in a scratch directory,
handed to the same function the training binary calls, and the first line of
the resulting message (or what happened instead) is printed. The binary-level
rows (flags) run ``python -m tf_contrastive.train`` in a subprocess.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_contrastive.core import runtime  # noqa: E402,F401  (before TensorFlow: oneDNN, threads)

# isort: split

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from tf_contrastive.core.config import base_config, validate  # noqa: E402
from tf_contrastive.data import imagenet, pipeline, records  # noqa: E402
from tf_contrastive.memory import MemoryBank  # noqa: E402
from tools.build_audio_tfrecords import decode  # noqa: E402
from tools.build_imagenet_tfrecords import to_rgb_jpeg  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _first_line(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e)
    if "assertion failed:" in text:  # a tf.debugging.Assert inside the input pipeline
        text = text[text.index("assertion failed:"):]
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    # TensorFlow's op context and eager Assert wrapping say nothing about the input.
    text = re.sub(r"\s*\[\[\{\{node [^]]*\]\]|\s*\[Op:\w+\]( name: [^)\s]*)?", "", text)
    text = re.sub(r"Expected 'tf.Tensor\(False[^']*' to be true. Summarized data: b'(.*)'",
                  r"\1", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return f"{type(e).__name__}: " + " ".join(lines[:2])[:300]


def _outcome(fn) -> str:
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001 - the point is to show any error
        return _first_line(e)
    return f"accepted: {result}"


def _write_shards(d: str, records: list[bytes], name="train-00000-of-00001") -> None:
    os.makedirs(d, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(d, name)) as w:
        for r in records:
            w.write(r)
    if name.startswith("train"):
        _write_shards(d, records[:1], "validation-00000-of-00001")


def _jpeg(h=40, w=40, channels=3) -> bytes:
    rng = np.random.default_rng(0)
    return tf.io.encode_jpeg(rng.integers(0, 255, (h, w, channels), dtype=np.uint8)).numpy()


def _imagenet_cfg(d: str):
    cfg = base_config()
    cfg.dataset.name, cfg.dataset.data_dir, cfg.dataset.image_size = "imagenet", d, 32
    cfg.train.batch_size = 2
    return cfg


def _read_all(d: str, skip=False, check_jpegs=True) -> str:
    cfg = _imagenet_cfg(d)
    cfg.dataset.skip_bad_records = skip
    cfg.dataset.check_jpegs = check_jpegs
    n = sum(int(b["image"].shape[0])
            for b in pipeline.build_dataset(cfg, split="train", training=False))
    return f"{n} images read"


def _corrupt_body(jpeg: bytes) -> bytes:
    """The JPEG with bytes after its start-of-scan header overwritten by a marker with
    a bogus length: the header and the magic bytes are intact, the body is not."""
    sos = jpeg.index(b"\xff\xda")
    body = sos + 2 + int.from_bytes(jpeg[sos + 2:sos + 4], "big")
    junk = b"\xff\xc4\x00\x03" + bytes(60)
    return jpeg[:body + 20] + junk + jpeg[body + 20 + len(junk):]


def _bank_update(ids: list[int]) -> str:
    bank = MemoryBank(4, 3)
    bank.update(tf.constant(ids), tf.ones([len(ids), 3]), momentum=0.5)
    return "bank updated"


def _bad_id(d: str) -> str:
    path = os.path.join(d, "train-00000-of-00001")
    # Ids derived from counts that do not fit the shard (here: 4 records, N = 3).
    ds = records.read_shard(tf.constant(path), tf.constant(0, tf.int64), 4, False, num_ids=3)
    return f"{sum(1 for _ in ds)} records read"


def _example(encoded: bytes | None, i: int) -> bytes:
    rec = imagenet.make_example(encoded or b"", 1, "n0", "x", 40, 40, f"{i}.JPEG", i)
    if encoded is None:
        ex = tf.train.Example.FromString(rec)
        del ex.features.feature["image/encoded"]
        rec = ex.SerializeToString()
    return rec


def data_rows(tmp: str) -> list[tuple[str, str]]:
    rows = []
    good = [_example(_jpeg(), i) for i in range(4)]

    d = os.path.join(tmp, "truncated")
    _write_shards(d, good)
    path = os.path.join(d, "train-00000-of-00001")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 30)
    rows.append(("truncated TFRecord shard", _outcome(lambda: _read_all(d))))
    rows.append(("same, `--config.dataset.skip_bad_records=True`",
                 _outcome(lambda: _read_all(d, skip=True))))

    d = os.path.join(tmp, "header")
    _write_shards(d, good)
    path = os.path.join(d, "train-00000-of-00001")
    raw = bytearray(open(path, "rb").read())
    second = 12 + int.from_bytes(raw[:8], "little") + 4
    raw[second] ^= 1  # one bit of record 1's length
    with open(path, "wb") as f:
        f.write(raw)
    rows.append(("corrupted length header in a shard", _outcome(lambda: _read_all(d))))

    d = os.path.join(tmp, "body")
    _write_shards(d, good[:2] + [_example(_corrupt_body(_jpeg()), 2)] + good[3:])
    rows.append(("JPEG with a corrupt body (header intact)", _outcome(lambda: _read_all(d))))
    rows.append(("same, `--config.dataset.skip_bad_records=True`",
                 _outcome(lambda: _read_all(d, skip=True))))
    rows.append(("same, `--config.dataset.check_jpegs=False` (libjpeg decodes around the "
                 "damage)", _outcome(lambda: _read_all(d, check_jpegs=False))))

    d = os.path.join(tmp, "missing")
    _write_shards(d, good[:2] + [_example(None, 2)] + good[3:])
    rows.append(("record without `image/encoded`", _outcome(lambda: _read_all(d))))
    rows.append(("same, `--config.dataset.skip_bad_records=True`",
                 _outcome(lambda: _read_all(d, skip=True))))

    d = os.path.join(tmp, "png")
    png = tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy()
    _write_shards(d, good[:1] + [_example(png, 1)] + good[2:])
    rows.append(("PNG payload in a record", _outcome(lambda: _read_all(d))))

    d = os.path.join(tmp, "ids")
    _write_shards(d, good)
    rows.append(("record id outside [0, N) (input pipeline)", _outcome(lambda: _bad_id(d))))
    rows.append(("id -1 reaching the memory bank", _outcome(lambda: _bank_update([0, -1]))))

    d = os.path.join(tmp, "small")
    _write_shards(d, [_example(_jpeg(6, 9), i) for i in range(4)])
    rows.append(("6x9 px JPEGs, 32 px crops", _outcome(lambda: _read_all(d))))

    for label, make in (("grayscale JPEG file", lambda: Image.fromarray(
            np.full((30, 20), 128, np.uint8), "L")),
                        ("CMYK JPEG file", lambda: Image.new("CMYK", (20, 30), (0, 50, 100, 0)))):
        path = os.path.join(tmp, label.split()[0] + ".JPEG")
        make().save(path, "JPEG")

        def convert(path=path):
            enc, h, w = to_rgb_jpeg(path)
            return (f"converter re-encodes it as RGB JPEG, {h}x{w}, "
                    f"{tf.image.extract_jpeg_shape(enc).numpy()[2]} channels")
        rows.append((f"{label} (converter)", _outcome(convert)))

    path = os.path.join(tmp, "text.JPEG")
    with open(path, "w") as f:
        f.write("not an image")
    rows.append(("file that is no image (converter)", _outcome(lambda: to_rgb_jpeg(path))))

    d = os.path.join(tmp, "empty")
    os.makedirs(d)
    rows.append(("empty data directory", _outcome(
        lambda: pipeline.describe(_imagenet_cfg(d).dataset))))
    rows.append(("`dataset.data_dir` matching no shards", _outcome(
        lambda: pipeline.describe(_imagenet_cfg(os.path.join(tmp, "nowhere")).dataset))))

    wav = os.path.join(tmp, "8k.wav")
    sf.write(wav, np.zeros(8000, np.int16), 8000, subtype="PCM_16")
    rows.append(("8 kHz WAV (audio converter)", _outcome(lambda: decode(wav, 16000))))
    stereo = os.path.join(tmp, "stereo.wav")
    sf.write(stereo, np.zeros((1600, 2), np.int16), 16000, subtype="PCM_16")
    rows.append(("stereo WAV (audio converter)", _outcome(lambda: decode(stereo, 16000))))
    buf = io.BytesIO()
    sf.write(buf, np.zeros(16000, np.int16), 16000, format="WAV", subtype="PCM_16")
    cut = os.path.join(tmp, "cut.wav")
    with open(cut, "wb") as f:
        f.write(buf.getvalue()[:5000])
    rows.append(("truncated WAV (audio converter)", _outcome(lambda: decode(cut, 16000))))
    junk = os.path.join(tmp, "junk.flac")
    with open(junk, "wb") as f:
        f.write(b"fLaC" + bytes(200))
    rows.append(("corrupt FLAC (audio converter)", _outcome(lambda: decode(junk, 16000))))
    return rows


def config_rows() -> list[tuple[str, str]]:
    rows = []

    def check(**changes):
        cfg = base_config()
        num_replicas = changes.pop("replicas", 1)
        for key, value in changes.items():
            section, name = key.split("__")
            cfg[section][name] = value
        validate(cfg, num_instances=60_000, num_replicas=num_replicas)
        return "valid"

    rows.append(("K >= N (`instdisc.num_negatives=60000`)",
                 _outcome(lambda: check(instdisc__num_negatives=60_000))))
    rows.append(("tau <= 0 (`instdisc.temperature=0`)",
                 _outcome(lambda: check(instdisc__temperature=0.0))))
    rows.append(("batch 250 on 4 replicas", _outcome(
        lambda: check(train__batch_size=250, replicas=4))))
    rows.append(("momentum 1 (`cmc.momentum=1.0`)", _outcome(lambda: check(cmc__momentum=1.0))))
    for flag in ("--config.train.batchsize=64", "--config.train.batch_size=big",
                 "--config.train.epochs=-1", "--config=configs/nope.py",
                 "--config=nope"):
        def run(flag=flag):
            out = subprocess.run([sys.executable, "-m", "tf_contrastive.train", flag,
                                  "--workdir=/tmp/tf_contrastive_bad_inputs"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=300,
                                 env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            lines = [ln.strip() for ln in out.stderr.splitlines()
                     if ln.strip() and not ln.startswith(("I0000", "W0000", "E0000", "WARNING"))]
            errors = [ln for ln in lines if "rror" in ln or "No such file" in ln] or lines
            return f"exit {out.returncode}: " + (errors[-1][:300] if errors else "")
        rows.append((f"`{flag}`", run()))
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = data_rows(tmp) + config_rows()
    print("| bad input | what the user sees |\n| --- | --- |")
    for what, seen in rows:
        print(f"| {what} | {seen.replace('|', '/')} |")


if __name__ == "__main__":
    main()
