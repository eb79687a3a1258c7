"""Audio TFRecords for CPC: record schema, metadata, parsing, frame-aligned windows, and
the dataset family ``dataset.name = "audio"``.

Written by ``tools/build_audio_tfrecords.py`` from a LibriSpeech-layout corpus.
Shards are named ``train-00000-of-00064`` / ``validation-...`` with a
``record_counts.json`` beside them in the ImageNet converter's format, so stable
ids come from :func:`tf_contrastive.data.shards.shard_offsets` unchanged.

One tf.train.Example per utterance:

* ``audio/encoded``: bytes, mono 16-bit little-endian PCM (no header),
* ``audio/sample_rate``, ``audio/num_samples``: int64,
* ``audio/speaker``: bytes, the corpus speaker id (``"103"``),
* ``audio/speaker_label``: int64, 0-based index into the sorted speaker list,
* ``audio/utterance_id``, ``audio/transcript``: bytes,
* ``audio/phones``: int64 list, one phone label per 10 ms frame (``FRAME``
  samples at 16 kHz), frame k covering samples [160 k, 160 k + 160); empty
  when the corpus had no alignment,
* ``audio/id``: int64, the record's position in its split (the stable id).

``speakers.json`` beside the shards holds ``{"speakers": [...], "sample_rate":
16000, "num_phones": P}`` (P = 0 without an alignment).

Windows start on a frame boundary, so a window's phone labels are the frames it
covers: ``phones[start // FRAME : start // FRAME + window // FRAME]``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tf_contrastive.core import views
from tf_contrastive.data import family, labels, shards

METADATA_FILE = "speakers.json"
SAMPLE_RATE = 16000
FRAME = 160  # samples per phone label: 10 ms at 16 kHz, the CPC alignment's hop
PAD_PHONE = -1  # phone label of frames past the end of an utterance or not aligned

FEATURES = {
    "audio/encoded": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "audio/num_samples": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "audio/speaker_label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "audio/phones": tf.io.VarLenFeature(tf.int64),
}


def _bytes(v: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def _ints(v: Sequence[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(v)))


def make_example(samples: np.ndarray, sample_rate: int, speaker: str, speaker_label: int,
                 utterance_id: str, transcript: str, instance_id: int,
                 phones: Sequence[int] = ()) -> bytes:
    """One serialized tf.train.Example of a mono int16 utterance (``samples``: [n])."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"{utterance_id}: samples must be 1-D int16, got "
                         f"{samples.dtype} {samples.shape}")
    feats = {
        "audio/encoded": _bytes(samples.astype("<i2").tobytes()),
        "audio/sample_rate": _ints([sample_rate]),
        "audio/num_samples": _ints([len(samples)]),
        "audio/speaker": _bytes(speaker.encode()),
        "audio/speaker_label": _ints([speaker_label]),
        "audio/utterance_id": _bytes(utterance_id.encode()),
        "audio/transcript": _bytes(transcript.encode()),
        "audio/phones": _ints([int(p) for p in phones]),
        "audio/id": _ints([instance_id]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def read_metadata(data_dir: str) -> dict:
    """``speakers.json``: {"speakers": [sorted ids], "sample_rate": int, "num_phones": int}."""
    path = os.path.join(data_dir, METADATA_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"config.dataset.data_dir: {path} not found (audio TFRecords "
                                "are written with tools/build_audio_tfrecords.py)")
    with tf.io.gfile.GFile(path) as f:
        try:
            meta = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
    missing = {"speakers", "sample_rate", "num_phones"} - set(meta)
    if missing:
        raise ValueError(f"{path}: missing keys {sorted(missing)}")
    return meta


def parse_record(serialized: tf.Tensor, position: tf.Tensor, filename: tf.Tensor,
                 skip_bad: bool):
    """Parses one record -> (waveform float32 [n] in [-1, 1), speaker label int32,
    phones int32 [frames], ok flag).

    A record without ``audio/encoded``, or whose byte length is odd or differs
    from 2 * ``audio/num_samples``, raises an error naming the shard and the
    record position, unless ``skip_bad`` is set, in which case ``ok`` is False
    (the waveform is then empty) and a warning naming them is printed.
    """
    ex = tf.io.parse_single_example(serialized, FEATURES)
    encoded = ex["audio/encoded"]
    length = tf.cast(tf.strings.length(encoded), tf.int64)
    has_audio = length > 0
    is_even = tf.equal(length % 2, 0)
    matches = tf.equal(length, 2 * ex["audio/num_samples"])
    ok = tf.logical_and(has_audio, tf.logical_and(is_even, matches))
    where = tf.strings.join([filename, ": record ", tf.strings.as_string(position)])
    reason = tf.where(
        has_audio,
        tf.where(is_even,
                 tf.strings.join(["audio/encoded holds ", tf.strings.as_string(length),
                                  " bytes but audio/num_samples is ",
                                  tf.strings.as_string(ex["audio/num_samples"])]),
                 tf.strings.join(["audio/encoded has an odd byte length ",
                                  tf.strings.as_string(length), " (not int16 PCM)"])),
        "record has no audio/encoded")
    if skip_bad:
        def warn():
            tf.print("skipping bad record:", where, "-", reason, output_stream=sys.stderr)
            return ok
        ok = tf.cond(ok, lambda: ok, warn)
    else:
        check = tf.debugging.Assert(ok, ["bad audio record:", where, reason], summarize=1)
        with tf.control_dependencies([check]):
            encoded = tf.identity(encoded)
    # decode_raw rejects an odd length, so a skipped record decodes as empty.
    pcm = tf.io.decode_raw(tf.where(ok, encoded, ""), tf.int16, little_endian=True)
    waveform = tf.cast(pcm, tf.float32) / 32768.0
    label = tf.cast(ex["audio/speaker_label"], tf.int32)
    phones = tf.cast(tf.sparse.to_dense(ex["audio/phones"]), tf.int32)
    return waveform, label, phones, ok


def _check_window(window: int) -> None:
    if window < FRAME or window % FRAME:
        raise ValueError(f"audio window must be a positive multiple of {FRAME} samples "
                         f"(10 ms at 16 kHz), got {window}")


def _window_at(waveform: tf.Tensor, phones: tf.Tensor, start_frame: tf.Tensor, window: int):
    """``window`` samples from frame ``start_frame`` on, and their phone labels; what
    runs past the end is padded with zeros (samples) and PAD_PHONE (labels)."""
    frames = window // FRAME
    start = start_frame * FRAME
    wave = waveform[start:start + window]
    wave = tf.pad(wave, [[0, window - tf.shape(wave)[0]]])
    ph = phones[start_frame:start_frame + frames]
    ph = tf.pad(ph, [[0, frames - tf.shape(ph)[0]]], constant_values=PAD_PHONE)
    wave.set_shape([window])
    ph.set_shape([frames])
    return wave, ph


def _last_start_frame(waveform: tf.Tensor, window: int) -> tf.Tensor:
    """The last frame a full window can start on (0 for an utterance shorter than it)."""
    return tf.maximum((tf.shape(waveform)[0] - window) // FRAME, 0)


def random_window(waveform: tf.Tensor, phones: tf.Tensor, seed: tf.Tensor, window: int):
    """A stateless random crop of ``window`` samples starting on a frame boundary.

    Returns (float32 [window], int32 [window // FRAME]). ``seed`` is a shape [2]
    integer tensor; the same seed gives the same crop. An utterance shorter than
    ``window`` is zero-padded at the end and its missing frames labelled PAD_PHONE.
    """
    _check_window(window)
    last = _last_start_frame(waveform, window)
    start_frame = tf.random.stateless_uniform([], seed, minval=0, maxval=last + 1,
                                              dtype=tf.int32)
    return _window_at(waveform, phones, start_frame, window)


def center_window(waveform: tf.Tensor, phones: tf.Tensor, window: int):
    """The evaluation crop: ``window`` samples starting on the frame boundary nearest
    below the centred position; padded like :func:`random_window`."""
    _check_window(window)
    return _window_at(waveform, phones, _last_start_frame(waveform, window) // 2, window)


class AudioFamily(family.RecordFamily):
    """Utterances: a random frame-aligned window of ``dataset.audio_window`` samples for
    training (``waveform``, ``phones``, no augmentation), the centred window for
    evaluation; the label is the 0-based speaker."""

    source = views.WAVEFORM
    input_key = "waveform"
    _LABEL_KEY = "audio/speaker_label"

    def label_spec(self, ds_cfg) -> labels.LabelSpec:
        speakers = len(read_metadata(ds_cfg.data_dir)["speakers"])
        return labels.resolve(ds_cfg, labels.LabelSchema(
            base=0, key=self._LABEL_KEY, classes_file=False, count=speakers,
            count_source=os.path.join(ds_cfg.data_dir, METADATA_FILE)))

    @staticmethod
    def window(ds_cfg) -> int:
        window = int(ds_cfg.audio_window)
        if window < FRAME or window % FRAME:
            raise ValueError(f"config.dataset.audio_window: must be a positive multiple of "
                             f"{FRAME} samples (10 ms at 16 kHz), got {window}")
        return window

    def input_shape(self, ds_cfg):
        return (self.window(ds_cfg),), (0.0,), (1.0,)

    def _parse(self, cfg, limit, count: bool = False):
        counted = self.reader.skipped.counting(cfg, count)
        spec = self.label_spec(cfg.dataset)

        def parse(rec, ident, pos, path):
            waveform, raw, phones, ok = parse_record(rec, pos, path, cfg.dataset.skip_bad_records)
            ok = counted(ok)
            if limit:
                ok = tf.logical_and(ok, ident < limit)
            label = labels.check_label(raw, spec, self._LABEL_KEY, shards.where(pos, path),
                                       check=ok)
            return {"waveform": waveform, "phones": phones, "label": label,
                    "index": tf.cast(ident, tf.int32), "ok": ok}
        return parse

    def training(self, cfg, view_spec, part):
        window = self.window(cfg.dataset)

        def one_pass(epoch):
            epoch_seed = tf.cast(cfg.seed, tf.int64) * 1_000_003 + epoch
            ds = self.records(cfg, "train", part, epoch=epoch)
            ds = ds.map(self._parse(cfg, cfg.dataset.train_limit, count=True),
                        num_parallel_calls=family.AUTOTUNE)
            ds = ds.filter(lambda r: r["ok"])

            def crop(r):
                seed = tf.stack([epoch_seed, tf.cast(r["index"], tf.int64)])
                crop_seed, key_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
                wave, phones = random_window(r["waveform"], r["phones"], crop_seed, window)
                key = tf.random.stateless_uniform([], key_seed, minval=None, maxval=None,
                                                  dtype=tf.int64)
                return {"waveform": wave, "phones": phones, "label": r["label"],
                        "index": r["index"], "key": key}

            ds = ds.map(crop, num_parallel_calls=family.AUTOTUNE)
            ds = shards.keyed_shuffle(ds, cfg.dataset.shuffle_buffer)
            return ds.batch(part.per_replica, drop_remainder=True)

        return family.Training(one_pass)

    def eval_stream(self, cfg, split, part):
        """Centre windows of ``split`` in record order."""
        window = self.window(cfg.dataset)
        limit = cfg.dataset.train_limit if split == "train" else cfg.dataset.eval_limit
        ds = self.records(cfg, split, part)
        ds = ds.map(self._parse(cfg, limit), num_parallel_calls=family.AUTOTUNE)
        ds = ds.filter(lambda r: r["ok"])

        def center(r):
            wave, phones = center_window(r["waveform"], r["phones"], window)
            return {"waveform": wave, "phones": phones, "label": r["label"], "index": r["index"]}

        return ds.map(center, num_parallel_calls=family.AUTOTUNE).batch(part.per_replica)
