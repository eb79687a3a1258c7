"""Synthesises a small LibriSpeech-layout speech corpus with espeak-ng, for tests and demos.

    python -m tools.make_espeak_corpus --out_dir=/tmp/espeak --num_speakers=8 \
        --utterances_per_speaker=40

Each speaker is one espeak-ng voice variant with its own fixed pitch (``-p``) and
speed (``-s``), so speaker identity is learnable from the audio. Sentences are
drawn from a fixed word list by an RNG seeded with (seed, speaker, utterance) and
lengthened or shortened a word at a time until the audio lasts 1.5-3 s.
espeak-ng writes 22050 Hz WAV; it is resampled to 16 kHz (polyphase, 320/441)
and written as mono 16-bit FLAC in ``<out>/<speaker>/<chapter>/`` with a
``<speaker>-<chapter>.trans.txt`` per chapter; each speaker's utterances are
split over two chapters. Needs the Debian ``espeak-ng`` package
(tools/setup.sh installs it).
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf
from absl import app, flags
from scipy import signal

FLAGS = flags.FLAGS
SAMPLE_RATE = 16000
MIN_SECONDS, MAX_SECONDS = 1.5, 3.0
# (voice+variant, pitch 0-99, words per minute): one speaker each, all distinct.
VOICES = (
    ("en+m1", 35, 150),
    ("en+f2", 70, 165),
    ("en+m3", 25, 135),
    ("en+f4", 80, 175),
    ("en-us+m2", 50, 160),
    ("en+croak", 40, 140),
    ("en+f3", 60, 155),
    ("en-gb-scotland+m4", 45, 170),
    ("en+klatt", 55, 145),
    ("en-us+f1", 75, 150),
)
WORDS = (
    "the a one two three four five six seven eight nine ten red green blue yellow black "
    "white small large quick slow bright dark cold warm old new happy quiet loud river "
    "mountain forest garden window table kitchen morning evening winter summer bird fish "
    "horse dog cat apple bread water stone paper letter story music train bridge market "
    "runs walks sings reads finds keeps brings opens closes watches carries follows "
    "under over behind beside near across and but then today again slowly").split()


def define_flags() -> None:
    """Flags live here, not at import, so tests can import the synthesiser."""
    flags.DEFINE_string("out_dir", None, "Where the corpus is written.")
    flags.DEFINE_integer("num_speakers", 8, f"Number of speakers (at most {len(VOICES)}).")
    flags.DEFINE_integer("utterances_per_speaker", 40, "Utterances per speaker.")
    flags.DEFINE_integer("seed", 0, "Seed of the sentences.")
    flags.DEFINE_integer("num_threads", 4, "Parallel espeak-ng processes.")


def _espeak(text: str, voice: str, pitch: int, speed: int, tmp_dir: str) -> tuple:
    """(int16 samples, sample rate) of ``text`` spoken by espeak-ng."""
    fd, path = tempfile.mkstemp(suffix=".wav", dir=tmp_dir)
    os.close(fd)
    try:
        run = subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed),
                              "-w", path, text], capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"espeak-ng -v {voice} failed: {run.stderr.strip()}")
        samples, rate = sf.read(path, dtype="int16")
    finally:
        os.remove(path)
    return samples, rate


def _to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    g = math.gcd(SAMPLE_RATE, rate)
    y = signal.resample_poly(samples.astype(np.float64), SAMPLE_RATE // g, rate // g)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def _utterance(speaker_no: int, utt_no: int, seed: int, tmp_dir: str):
    """(transcript, 16 kHz int16 samples) of one utterance, deterministic in its args."""
    voice, pitch, speed = VOICES[speaker_no]
    rng = np.random.default_rng([seed, speaker_no, utt_no])
    pool = [WORDS[i] for i in rng.integers(0, len(WORDS), size=24)]
    target = rng.uniform(MIN_SECONDS + 0.2, MAX_SECONDS - 0.4)
    n = max(2, round(target * speed / 60))
    for _ in range(10):
        text = " ".join(pool[:n])
        samples, rate = _espeak(text, voice, pitch, speed, tmp_dir)
        seconds = len(samples) / rate
        if seconds > MAX_SECONDS and n > 1:
            n -= 1
        elif seconds < MIN_SECONDS and n < len(pool):
            n += 1
        else:
            break
    return text.upper(), _to_16k(samples, rate)


def synthesise(out_dir: str, num_speakers: int = 8, utterances_per_speaker: int = 40,
               seed: int = 0, num_threads: int = 4) -> list[str]:
    """Writes the corpus; returns the written FLAC paths, sorted by utterance id."""
    if shutil.which("espeak-ng") is None:
        raise FileNotFoundError("espeak-ng not found; install it with "
                                "`apt-get install espeak-ng` (tools/setup.sh does)")
    if not 1 <= num_speakers <= len(VOICES):
        raise ValueError(f"num_speakers must be in [1, {len(VOICES)}], got {num_speakers}")
    if utterances_per_speaker < 1:
        raise ValueError(f"utterances_per_speaker must be >= 1, got {utterances_per_speaker}")
    jobs = []  # (speaker no, utterance no, speaker id, chapter id, utterance id)
    for s in range(num_speakers):
        speaker = str(100 + 11 * s)
        for u in range(utterances_per_speaker):
            chapter = str(5000 + 10 * s + (2 * u >= utterances_per_speaker))
            jobs.append((s, u, speaker, chapter, f"{speaker}-{chapter}-{u:04d}"))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_dir:
        def make(job):
            s, u, speaker, chapter, uid = job
            text, samples = _utterance(s, u, seed, tmp_dir)
            folder = os.path.join(out_dir, speaker, chapter)
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f"{uid}.flac")
            sf.write(path, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            return uid, text, path

        with concurrent.futures.ThreadPoolExecutor(max(1, num_threads)) as pool:
            written = list(pool.map(make, jobs))
    lines: dict[str, list[str]] = {}
    for (_, _, speaker, chapter, _), (uid, text, _) in zip(jobs, written, strict=True):
        lines.setdefault(os.path.join(out_dir, speaker, chapter,
                                      f"{speaker}-{chapter}.trans.txt"), []).append(
            f"{uid} {text}\n")
    for path, content in lines.items():
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(content)
    return [path for _, _, path in sorted(written)]


def main(argv):
    del argv
    if not FLAGS.out_dir:
        raise app.UsageError("--out_dir is required")
    paths = synthesise(FLAGS.out_dir, FLAGS.num_speakers, FLAGS.utterances_per_speaker,
                       FLAGS.seed, FLAGS.num_threads)
    print(f"wrote {len(paths)} utterances of {FLAGS.num_speakers} speakers to {FLAGS.out_dir}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
