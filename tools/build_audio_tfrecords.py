"""Converts a LibriSpeech-layout corpus into audio TFRecords for CPC.

    python -m tools.build_audio_tfrecords --input_dir=/data/LibriSpeech/train-clean-100 \
        --output_dir=/data/librispeech-tfr --alignment=/data/cpc/converted_aligned_phones.txt

(run from the repository root: ``-m`` makes ``tools`` importable for ``Progress``).

Input: ``<input_dir>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.{flac,wav,ogg}``
with ``<input_dir>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` holding
``<utterance id> <TRANSCRIPT>`` lines. Audio must be mono at ``--sample_rate``
(16 kHz); it is stored as int16 PCM (schema in tf_contrastive/data/audio.py).

Split: for every speaker, ``--validation_fraction`` of its utterances (at least
one, at most all but one) are held out into ``validation-*``, chosen by a
shuffle of its sorted utterance ids seeded by (``--seed``, speaker), so each
speaker is in both splits (speaker probes are scored on held-out utterances)
and a speaker's split does not depend on which other speakers are converted.
Training records are written in a seeded random order, validation records
sorted by utterance id; ``audio/id`` is the position in the split.

``--alignment``: optional file of ``<utterance id> p1 p2 ...`` lines, one integer
phone label per 10 ms frame (the format of the CPC paper's LibriSpeech phone
labels). A line whose frame count is more than one away from
ceil(samples / 160) fails the conversion; utterances without a line are stored
with no phones.

Also written: ``record_counts.json`` (records and bytes per shard, as the
ImageNet converter writes, so ids derive without a counting pass) and
``speakers.json`` (sorted speaker ids, sample rate, number of phone classes).
Undecodable, truncated, non-mono or wrongly sampled audio, or a missing
transcript, fails the conversion naming the file, as does an output folder
holding shards of a conversion with other shard counts (readers would glob them).
"""

from __future__ import annotations

from tf_contrastive.core import runtime  # first: TensorFlow reads oneDNN/threads at import

# isort: split

import concurrent.futures
import dataclasses
import json
import os
import random
import re

import numpy as np
import soundfile as sf
import tensorflow as tf
from absl import app, flags

from tf_contrastive.data.audio import FRAME, METADATA_FILE, make_example
from tf_contrastive.data.imagenet import COUNTS_FILE
from tools.build_imagenet_tfrecords import Progress

FLAGS = flags.FLAGS
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg")
# Data-chunk sizes that streaming WAV writers leave in place of the real one.
_PLACEHOLDER_SIZES = (0, 0x7FFFFFFF, 0xFFFFFFFF)


def define_flags() -> None:
    """Flags live here, not at import, so tests can import the converter."""
    flags.DEFINE_string("input_dir", None, "Corpus root holding <speaker>/<chapter>/ folders.")
    flags.DEFINE_string("output_dir", None, "Where the shards are written.")
    flags.DEFINE_integer("train_shards", 64, "Number of training shards.")
    flags.DEFINE_integer("validation_shards", 8, "Number of validation shards.")
    flags.DEFINE_float("validation_fraction", 0.1,
                       "Share of each speaker's utterances held out for validation.")
    flags.DEFINE_string("alignment", "", "Optional file of '<utterance id> <phone per 10 ms>...'.")
    flags.DEFINE_integer("sample_rate", 16000, "Required sample rate of every file, in Hz.")
    flags.DEFINE_integer("num_threads", 8, "Parallel writer threads.")
    flags.DEFINE_integer("seed", 12345, "Seed of the held-out choice and the training order.")


@dataclasses.dataclass(frozen=True)
class Utterance:
    utterance_id: str
    speaker: str
    path: str
    transcript: str


def _read_transcripts(path: str) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split(None, 1)
            if parts:
                out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


def list_corpus(input_dir: str) -> list[Utterance]:
    """Every utterance under ``input_dir``, sorted by utterance id, with its transcript."""
    if not os.path.isdir(input_dir):
        raise FileNotFoundError(f"--input_dir: {input_dir} is not a directory")
    found: dict[str, Utterance] = {}
    for speaker in sorted(os.listdir(input_dir)):
        speaker_dir = os.path.join(input_dir, speaker)
        if not os.path.isdir(speaker_dir):
            continue
        for chapter in sorted(os.listdir(speaker_dir)):
            chapter_dir = os.path.join(speaker_dir, chapter)
            if not os.path.isdir(chapter_dir):
                continue
            trans_path = os.path.join(chapter_dir, f"{speaker}-{chapter}.trans.txt")
            transcripts = None
            for name in sorted(os.listdir(chapter_dir)):
                stem, ext = os.path.splitext(name)
                if ext.lower() not in AUDIO_EXTENSIONS:
                    continue
                path = os.path.join(chapter_dir, name)
                if stem in found:
                    raise ValueError(f"utterance {stem}: two audio files, {found[stem].path} "
                                     f"and {path}")
                if transcripts is None:
                    if not os.path.isfile(trans_path):
                        raise ValueError(f"utterance {stem}: transcript file {trans_path} "
                                         "does not exist")
                    transcripts = _read_transcripts(trans_path)
                if stem not in transcripts:
                    raise ValueError(f"utterance {stem}: no transcript line in {trans_path}")
                found[stem] = Utterance(stem, speaker, path, transcripts[stem])
    if not found:
        raise FileNotFoundError(f"--input_dir: no {'/'.join(AUDIO_EXTENSIONS)} files under "
                                f"{input_dir}/<speaker>/<chapter>/")
    return [found[k] for k in sorted(found)]


def split_by_speaker(utterances: list[Utterance], validation_fraction: float,
                     seed: int) -> tuple[list[Utterance], list[Utterance]]:
    """(training utterances in a seeded random order, held-out ones sorted by id)."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"--validation_fraction must be in (0, 1), got {validation_fraction}")
    by_speaker: dict[str, list[Utterance]] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker, []).append(u)
    train, held_out = [], []
    for speaker in sorted(by_speaker):
        utts = sorted(by_speaker[speaker], key=lambda u: u.utterance_id)
        if len(utts) < 2:
            raise ValueError(f"speaker {speaker}: only {len(utts)} utterance "
                             f"({utts[0].path}); each speaker needs >= 2 to appear in "
                             "both splits")
        n_val = min(max(1, round(validation_fraction * len(utts))), len(utts) - 1)
        # A string seed is hashed with SHA-512 by random.Random: stable across runs.
        random.Random(f"{seed}:{speaker}").shuffle(utts)
        held_out += utts[:n_val]
        train += utts[n_val:]
    train.sort(key=lambda u: u.utterance_id)
    random.Random(seed).shuffle(train)
    held_out.sort(key=lambda u: u.utterance_id)
    return train, held_out


def read_alignment(path: str) -> dict[str, list[int]]:
    """{utterance id: phone label per 10 ms frame} from ``<id> p1 p2 ...`` lines."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--alignment: {path} does not exist")
    out: dict[str, list[int]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                labels = [int(p) for p in parts[1:]]
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: phone labels must be integers ({e})") from e
            if any(p < 0 for p in labels):
                raise ValueError(f"{path}:{lineno}: negative phone label")
            if parts[0] in out:
                raise ValueError(f"{path}:{lineno}: utterance {parts[0]} listed twice")
            out[parts[0]] = labels
    return out


def _truncated_wav(extra_info: str) -> str:
    """libsndfile's header log notes ``data : <declared> (should be <present>)`` when a
    WAV's data chunk is cut short, and then silently reads what is there."""
    m = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", extra_info, re.MULTILINE)
    if m:
        declared, present = int(m.group(1)), int(m.group(2))
        if declared > present and declared not in _PLACEHOLDER_SIZES:
            return f"truncated: header declares {declared} data bytes, file holds {present}"
    return ""


def decode(path: str, sample_rate: int) -> np.ndarray:
    """The file's samples as int16 [n]; anything but intact mono audio at
    ``sample_rate`` raises ValueError naming ``path``."""
    try:
        with sf.SoundFile(path) as f:
            if f.samplerate != sample_rate:
                raise ValueError(f"{path}: sample rate is {f.samplerate} Hz, expected "
                                 f"{sample_rate} Hz (resample the corpus or set "
                                 "--sample_rate)")
            if f.channels != 1:
                raise ValueError(f"{path}: {f.channels} channels, expected mono")
            declared = f.frames
            problem = _truncated_wav(f.extra_info)
            data = f.read(dtype="int16", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        raise ValueError(f"{path}: not decodable audio ({e})") from e
    if problem:
        raise ValueError(f"{path}: {problem}")
    if len(data) < declared:
        raise ValueError(f"{path}: truncated: header declares {declared} samples, "
                         f"decoded {len(data)}")
    if len(data) == 0:
        raise ValueError(f"{path}: no samples")
    return data[:, 0]


def write_split(items: list[Utterance], name: str, num_shards: int, output_dir: str,
                speaker_label: dict[str, int], alignment: dict[str, list[int]],
                alignment_path: str, sample_rate: int, num_threads: int) -> dict:
    """Writes ``num_shards`` shards of ``items``; returns {shard: {records, bytes}}."""
    if num_shards < 1:
        raise ValueError(f"--{name}_shards must be >= 1, got {num_shards}")
    bounds = [round(i * len(items) / num_shards) for i in range(num_shards + 1)]
    progress = Progress(len(items), name, unit="utterances")

    def write_shard(k: int) -> tuple[str, dict]:
        shard = f"{name}-{k:05d}-of-{num_shards:05d}"
        path = os.path.join(output_dir, shard)
        tmp = path + ".tmp"
        try:
            with tf.io.TFRecordWriter(tmp) as writer:
                for pos in range(bounds[k], bounds[k + 1]):
                    u = items[pos]
                    samples = decode(u.path, sample_rate)
                    phones = alignment.get(u.utterance_id, [])
                    expected = -(-len(samples) // FRAME)
                    if phones and abs(len(phones) - expected) > 1:
                        raise ValueError(
                            f"utterance {u.utterance_id}: {alignment_path} has {len(phones)} "
                            f"frames but {u.path} has {len(samples)} samples = {expected} "
                            f"frames of {FRAME}")
                    writer.write(make_example(samples, sample_rate, u.speaker,
                                              speaker_label[u.speaker], u.utterance_id,
                                              u.transcript, pos, phones))
                    progress.add()
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        os.replace(tmp, path)
        return shard, {"records": bounds[k + 1] - bounds[k], "bytes": os.path.getsize(path)}

    with concurrent.futures.ThreadPoolExecutor(max(1, num_threads)) as pool:
        return dict(pool.map(write_shard, range(num_shards)))


def convert(input_dir: str, output_dir: str, train_shards: int = 64,
            validation_shards: int = 8, validation_fraction: float = 0.1,
            alignment: str = "", sample_rate: int = 16000, num_threads: int = 8,
            seed: int = 12345) -> dict:
    """Converts the corpus into both splits; returns (and writes) the record counts."""
    utterances = list_corpus(input_dir)
    train, held_out = split_by_speaker(utterances, validation_fraction, seed)
    phones = read_alignment(alignment) if alignment else {}
    if phones:
        unaligned = sum(u.utterance_id not in phones for u in utterances)
        if unaligned:
            print(f"{unaligned} of {len(utterances)} utterances have no line in {alignment}; "
                  "they are stored without phone labels")
    speakers = sorted({u.speaker for u in utterances})
    label_of = {s: i for i, s in enumerate(speakers)}
    os.makedirs(output_dir, exist_ok=True)
    planned = {f"{name}-{k:05d}-of-{n:05d}" for name, n in
               (("train", train_shards), ("validation", validation_shards)) for k in range(n)}
    stale = sorted(n for n in os.listdir(output_dir)
                   if re.fullmatch(r"(train|validation)-\d+-of-\d+", n) and n not in planned)
    if stale:  # Readers glob <split>-*-of-*: old shards would be read as data.
        raise ValueError(f"--output_dir {output_dir} holds shards of another conversion "
                         f"({', '.join(stale[:3])}...); use an empty directory")
    counts = write_split(train, "train", train_shards, output_dir, label_of, phones,
                         alignment, sample_rate, num_threads)
    counts.update(write_split(held_out, "validation", validation_shards, output_dir, label_of,
                              phones, alignment, sample_rate, num_threads))
    num_phones = max((max(p) + 1 for p in phones.values() if p), default=0)
    with open(os.path.join(output_dir, METADATA_FILE), "w") as f:
        json.dump({"speakers": speakers, "sample_rate": sample_rate, "num_phones": num_phones},
                  f, indent=1)
    with open(os.path.join(output_dir, COUNTS_FILE), "w") as f:
        json.dump(counts, f, indent=1, sort_keys=True)
    return counts


def main(argv):
    del argv
    print(runtime.apply().line(), flush=True)
    if not FLAGS.input_dir or not FLAGS.output_dir:
        raise app.UsageError("--input_dir and --output_dir are required")
    counts = convert(FLAGS.input_dir, FLAGS.output_dir, FLAGS.train_shards,
                     FLAGS.validation_shards, FLAGS.validation_fraction, FLAGS.alignment,
                     FLAGS.sample_rate, FLAGS.num_threads, FLAGS.seed)
    n_train = sum(v["records"] for k, v in counts.items() if k.startswith("train"))
    n_val = sum(v["records"] for k, v in counts.items() if k.startswith("validation"))
    print(f"wrote {n_train} training and {n_val} validation records to {FLAGS.output_dir}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
