"""Audio TFRecords for CPC: espeak corpus -> converter -> schema -> windows -> pipeline."""

import json
import os
import re

import keras
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from tf_contrastive.core import views
from tf_contrastive.core.config import base_config
from tf_contrastive.data import audio, pipeline
from tools.build_audio_tfrecords import Utterance, convert, split_by_speaker
from tools.make_espeak_corpus import synthesise

WINDOW = 160 * 16  # samples in the pipeline tests' windows (16 frames)


@pytest.fixture(scope="module")
def espeak(tmp_path_factory):
    """3 espeak speakers x 4 utterances, converted: (corpus dir, tfrecord dir, counts)."""
    corpus = str(tmp_path_factory.mktemp("espeak"))
    out = str(tmp_path_factory.mktemp("espeak_tfr"))
    synthesise(corpus, num_speakers=3, utterances_per_speaker=4, seed=0, num_threads=2)
    counts = convert(corpus, out, train_shards=2, validation_shards=1, num_threads=2)
    return corpus, out, counts


def _records(data_dir, split):
    """Every record of a split as a dict, in id order (shards sorted, then position)."""
    out = []
    prefix = "train" if split == "train" else "validation"
    for name in sorted(os.listdir(data_dir)):
        if name.startswith(prefix + "-"):
            for raw in tf.data.TFRecordDataset(os.path.join(data_dir, name)):
                f = tf.train.Example.FromString(raw.numpy()).features.feature
                out.append({
                    "pcm": np.frombuffer(f["audio/encoded"].bytes_list.value[0], "<i2"),
                    "rate": f["audio/sample_rate"].int64_list.value[0],
                    "n": f["audio/num_samples"].int64_list.value[0],
                    "speaker": f["audio/speaker"].bytes_list.value[0].decode(),
                    "label": f["audio/speaker_label"].int64_list.value[0],
                    "uid": f["audio/utterance_id"].bytes_list.value[0].decode(),
                    "text": f["audio/transcript"].bytes_list.value[0].decode(),
                    "phones": list(f["audio/phones"].int64_list.value),
                    "id": f["audio/id"].int64_list.value[0],
                })
    return out


def _transcripts(corpus):
    lines = {}
    for root, _, files in os.walk(corpus):
        for name in files:
            if name.endswith(".trans.txt"):
                with open(os.path.join(root, name)) as f:
                    for line in f:
                        uid, text = line.rstrip("\n").split(" ", 1)
                        lines[uid] = (text, root)
    return lines


def test_espeak_corpus_layout(espeak):
    corpus, _, _ = espeak
    lines = _transcripts(corpus)
    assert len(lines) == 12
    for uid, (text, folder) in lines.items():
        speaker, chapter, _ = uid.split("-")
        assert folder == os.path.join(corpus, speaker, chapter) and text.strip()
        info = sf.info(os.path.join(folder, uid + ".flac"))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 1.5 <= info.duration <= 3.0


def test_records_are_sample_exact_with_transcripts_speakers_and_ids(espeak):
    corpus, out, counts = espeak
    lines = _transcripts(corpus)
    with open(os.path.join(out, "speakers.json")) as f:
        meta = json.load(f)
    assert meta == {"speakers": ["100", "111", "122"], "sample_rate": 16000, "num_phones": 0}
    assert audio.read_metadata(out) == meta
    with open(os.path.join(out, "record_counts.json")) as f:
        assert json.load(f) == counts
    assert set(counts) == {"train-00000-of-00002", "train-00001-of-00002",
                           "validation-00000-of-00001"}
    seen = {}
    for split in ("train", "validation"):
        recs = _records(out, split)
        assert [r["id"] for r in recs] == list(range(len(recs)))
        for r in recs:
            text, folder = lines[r["uid"]]
            expected, rate = sf.read(os.path.join(folder, r["uid"] + ".flac"), dtype="int16")
            np.testing.assert_array_equal(r["pcm"], expected)
            assert (r["rate"], r["n"]) == (rate, len(expected))
            assert r["text"] == text and r["phones"] == []
            assert r["speaker"] == r["uid"].split("-")[0]
            assert r["label"] == meta["speakers"].index(r["speaker"])
            seen.setdefault(split, []).append(r["uid"])
    assert sorted(seen["train"] + seen["validation"]) == sorted(lines)
    # 10% of 4 rounds to 0; every speaker still gets one held-out utterance.
    assert sorted(u.split("-")[0] for u in seen["validation"]) == ["100", "111", "122"]


def test_held_out_choice_is_per_speaker_and_deterministic():
    utts = [Utterance(f"{s}-1-{i:04d}", s, "", "") for s in ("7", "8") for i in range(20)]
    train, held = split_by_speaker(utts, 0.2, seed=3)
    assert split_by_speaker(utts, 0.2, seed=3) == (train, held)
    assert sorted(u.speaker for u in held) == ["7"] * 4 + ["8"] * 4
    # Adding a speaker leaves the others' choice alone.
    more = utts + [Utterance(f"9-1-{i:04d}", "9", "", "") for i in range(10)]
    _, held_more = split_by_speaker(more, 0.2, seed=3)
    assert [u for u in held_more if u.speaker != "9"] == held
    with pytest.raises(ValueError, match="speaker 9: only 1 utterance"):
        split_by_speaker(utts + [Utterance("9-1-0000", "9", "x.flac", "")], 0.2, seed=3)


# A corpus whose sample values encode their frame: sample i of an utterance is
# i // 160 + 1, so any window tells which frames it holds (0 = padding).
RAMP_LENGTHS = {"1": (160 * 40 + 37, 160 * 9 + 5, 160 * 30), "2": (160 * 33 + 100, 160 * 25,
                                                                    160 * 21 + 159)}


def _ramp_phones(uid, frames):
    salt = sum(map(ord, uid))
    return [(7 * k + salt) % 41 for k in range(frames)]


@pytest.fixture(scope="module")
def ramp(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("ramp")
    out = str(tmp_path_factory.mktemp("ramp_tfr"))
    align_lines, lengths, phones = [], {}, {}
    for speaker, lens in RAMP_LENGTHS.items():
        folder = corpus / speaker / "5"
        folder.mkdir(parents=True)
        trans = []
        for u, n in enumerate(lens):
            uid = f"{speaker}-5-{u:04d}"
            sf.write(str(folder / f"{uid}.wav"), (np.arange(n) // 160 + 1).astype(np.int16),
                     16000, subtype="PCM_16")
            trans.append(f"{uid} RAMP {u}\n")
            lengths[uid] = n
            if uid == "2-5-0001":
                continue  # no alignment line: stored without phones
            frames = -(-n // 160) + (1 if uid == "1-5-0000" else 0)  # one extra is tolerated
            phones[uid] = _ramp_phones(uid, frames)
            align_lines.append(" ".join([uid] + [str(p) for p in phones[uid]]) + "\n")
        (folder / f"{speaker}-5.trans.txt").write_text("".join(trans))
    (corpus / "phones.txt").write_text("".join(align_lines))
    convert(str(corpus), out, train_shards=2, validation_shards=1, validation_fraction=0.34,
            alignment=str(corpus / "phones.txt"), num_threads=2)
    return str(corpus), out, lengths, phones


def test_alignment_is_stored_per_record(ramp):
    _, out, lengths, phones = ramp
    assert audio.read_metadata(out)["num_phones"] == 41
    recs = _records(out, "train") + _records(out, "validation")
    assert sorted(r["uid"] for r in recs) == sorted(lengths)
    for r in recs:
        assert r["phones"] == phones.get(r["uid"], [])
        np.testing.assert_array_equal(r["pcm"], np.arange(r["n"]) // 160 + 1)


def _ramp_cfg(data_dir, **ds):
    cfg = base_config()
    cfg.dataset.name = "audio"
    cfg.dataset.data_dir = data_dir
    cfg.dataset.audio_window = WINDOW
    cfg.dataset.shuffle_buffer = 3
    cfg.train.batch_size = 2
    cfg.eval.batch_size = 3
    for k, v in ds.items():
        setattr(cfg.dataset, k, v)
    return cfg


def _check_window(wave, phones_row, n, aligned):
    """The window is frames s.. of its utterance, and its labels are those frames'."""
    values = np.rint(wave * 32768).astype(np.int64)
    s = int(values[0]) - 1
    assert s >= 0 and (s * 160 + WINDOW <= n or s == 0)
    pos = s * 160 + np.arange(WINDOW)
    np.testing.assert_array_equal(values, np.where(pos < n, pos // 160 + 1, 0))
    frames = s + np.arange(WINDOW // 160)
    expected = [aligned[k] if k < len(aligned) else -1 for k in frames]
    np.testing.assert_array_equal(phones_row, expected)
    return s


def test_training_windows_line_up_with_their_phone_labels(ramp):
    _, out, lengths, phones = ramp
    uid_of = {r["id"]: r["uid"] for r in _records(out, "train")}
    assert len(uid_of) == 4
    it = iter(pipeline.build_dataset(_ramp_cfg(out), view_spec=views.WAVEFORM_WINDOW))
    starts = {}
    for epoch in range(3):
        for _ in range(2):  # 4 training utterances / batch 2
            b = next(it)
            for wave, ph, idx in zip(b["waveform"].numpy(), b["phones"].numpy(),
                                     b["index"].numpy(), strict=True):
                uid = uid_of[idx]
                s = _check_window(wave, ph, lengths[uid], phones.get(uid, []))
                starts.setdefault(uid, []).append((epoch, s))
    assert all(len(v) == 3 for v in starts.values())  # every id once per epoch
    long = [uid for uid in starts if lengths[uid] > WINDOW + 160 * 8]
    assert long and any(len({s for _, s in starts[u]}) > 1 for u in long)  # windows vary


def test_center_windows_for_evaluation(ramp):
    _, out, lengths, phones = ramp
    uid_of = {r["id"]: r["uid"] for r in _records(out, "validation")}
    batches = list(pipeline.build_dataset(_ramp_cfg(out), split="validation", training=False))
    assert set(batches[0]) == {"waveform", "phones", "label", "index"}
    ids = np.concatenate([b["index"].numpy() for b in batches])
    assert sorted(ids) == [0, 1]
    for b in batches:
        for wave, ph, idx in zip(b["waveform"].numpy(), b["phones"].numpy(),
                                 b["index"].numpy(), strict=True):
            n = lengths[uid_of[idx]]
            s = _check_window(wave, ph, n, phones.get(uid_of[idx], []))
            assert s == max((n - WINDOW) // 160, 0) // 2


def test_short_utterance_is_zero_padded_with_unknown_phones():
    wave = tf.range(1, 401, dtype=tf.float32)
    ph = tf.constant([4, 5, 6], tf.int32)
    w, p = audio.random_window(wave, ph, tf.constant([1, 2], tf.int64), 160 * 4)
    np.testing.assert_array_equal(w.numpy(), np.r_[np.arange(1, 401), np.zeros(240)])
    np.testing.assert_array_equal(p.numpy(), [4, 5, 6, -1])
    with pytest.raises(ValueError, match="multiple of 160"):
        audio.center_window(wave, ph, 300)


def _espeak_cfg(data_dir, **ds):
    cfg = _ramp_cfg(data_dir, **ds)
    cfg.dataset.audio_window = 160 * 64
    cfg.train.batch_size = 3
    cfg.eval.batch_size = 5
    return cfg


def test_describe_input_key_and_views(espeak):
    _, out, _ = espeak
    cfg = _espeak_cfg(out)
    info = pipeline.describe(cfg.dataset)
    assert info == pipeline.DatasetInfo(9, 3, 3, (160 * 64,), (0.0,), (1.0,),
                                        train_shards=info.train_shards, source=views.WAVEFORM)
    assert sum(info.train_shards) == 9
    assert pipeline.input_key(cfg) == "waveform"
    assert pipeline.input_key(base_config()) == "image"
    with pytest.raises(ValueError, match="do not fit dataset 'audio', which yields 'waveform'"):
        pipeline.build_dataset(cfg, view_spec=views.SINGLE)
    cfg.dataset.audio_window = 1000
    with pytest.raises(ValueError, match="config.dataset.audio_window"):
        pipeline.describe(cfg.dataset)


def test_training_batches_keys_shapes_and_resume(espeak):
    _, out, _ = espeak
    keras.utils.set_random_seed(0)  # as the trainer does: the pipeline must not mind
    cfg = _espeak_cfg(out)
    labels = {r["id"]: r["label"] for r in _records(out, "train")}
    it = iter(pipeline.build_dataset(cfg, view_spec=views.WAVEFORM_WINDOW))
    epoch0 = [next(it) for _ in range(3)]  # 9 utterances / batch 3
    b = epoch0[0]
    assert set(b) == {"waveform", "label", "index", "phones"}
    assert b["waveform"].shape == (3, 160 * 64) and b["waveform"].dtype == tf.float32
    assert b["phones"].shape == (3, 64) and b["phones"].dtype == tf.int32
    assert b["label"].dtype == tf.int32 and b["index"].dtype == tf.int32
    assert np.all(b["phones"].numpy() == -1)  # no alignment
    assert -1.0 <= float(tf.reduce_min(b["waveform"])) and float(tf.reduce_max(b["waveform"])) < 1
    ids = np.concatenate([x["index"].numpy() for x in epoch0])
    assert sorted(ids) == list(range(9))
    for x in epoch0:
        assert [labels[i] for i in x["index"].numpy()] == list(x["label"].numpy())
    epoch1 = [next(it) for _ in range(3)]
    assert not np.array_equal(ids, np.concatenate([x["index"].numpy() for x in epoch1]))
    resumed = iter(pipeline.build_dataset(cfg, view_spec=views.WAVEFORM_WINDOW, start_epoch=1))
    for a in epoch1:
        r = next(resumed)
        for key in ("waveform", "label", "index", "phones"):
            np.testing.assert_array_equal(a[key].numpy(), r[key].numpy())


def test_input_pipelines_read_disjoint_shards(espeak):
    _, out, _ = espeak
    cfg = _espeak_cfg(out)
    cfg.train.batch_size = 2
    per_pipe = []
    for pid in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pid,
                                         num_replicas_in_sync=2)
        ds = pipeline.build_dataset(cfg, ctx, view_spec=views.WAVEFORM_WINDOW).take(2)
        per_pipe.append({int(i) for b in ds for i in b["index"].numpy()})
    assert per_pipe[0] and per_pipe[1] and not per_pipe[0] & per_pipe[1]


def test_missing_metadata_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "speakers.json"))):
        audio.read_metadata(str(tmp_path))


def _rewrite_record(path, index, mutate):
    recs = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    ex = tf.train.Example.FromString(recs[index])
    mutate(ex.features.feature)
    recs[index] = ex.SerializeToString()
    with tf.io.TFRecordWriter(path) as w:
        for r in recs:
            w.write(r)


def _cut(nbytes):
    def mutate(feat):
        pcm = feat["audio/encoded"].bytes_list.value[0]
        feat["audio/encoded"].bytes_list.value[0] = pcm[:-nbytes]
    return mutate


@pytest.mark.parametrize("mutate,reason", [
    (_cut(1), "odd byte length"),
    (_cut(2), "but audio/num_samples is"),
    (lambda feat: feat.pop("audio/encoded"), "no audio/encoded"),
])
def test_bad_record_error_names_shard_and_position(espeak, tmp_path, mutate, reason):
    _, out, _ = espeak
    for name in os.listdir(out):
        if name != "record_counts.json":
            (tmp_path / name).write_bytes(open(os.path.join(out, name), "rb").read())
    _rewrite_record(str(tmp_path / "train-00000-of-00002"), 1, mutate)
    cfg = _espeak_cfg(str(tmp_path))
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        for _ in pipeline.build_dataset(cfg, split="train", training=False):
            pass
    assert "train-00000-of-00002: record 1" in str(err.value) and reason in str(err.value)
    cfg.dataset.skip_bad_records = True
    ids = np.concatenate([b["index"].numpy() for b in
                          pipeline.build_dataset(cfg, split="train", training=False)])
    assert sorted(ids) == [i for i in range(9) if i != 1]


def _one_speaker(root, write_bad, trans_lines=None):
    """Speaker 9, chapter 1: a good FLAC 9-1-0000 and a bad file from ``write_bad``."""
    folder = root / "9" / "1"
    folder.mkdir(parents=True)
    good = (np.sin(np.arange(8000) / 7.0) * 8000).astype(np.int16)
    sf.write(str(folder / "9-1-0000.flac"), good, 16000, format="FLAC", subtype="PCM_16")
    bad = write_bad(folder, good)
    lines = trans_lines or ["9-1-0000 GOOD", "9-1-0001 BAD"]
    (folder / "9-1.trans.txt").write_text("\n".join(lines) + "\n")
    return str(bad)


def _wav(rate=16000, channels=1):
    def write(folder, good):
        x = good if channels == 1 else np.stack([good] * channels, axis=1)
        sf.write(str(folder / "9-1-0001.wav"), x, rate, subtype="PCM_16")
        return folder / "9-1-0001.wav"
    return write


def _truncated(fmt):
    def write(folder, good):
        path = folder / f"9-1-0001.{fmt}"
        sf.write(str(path), good, 16000, format=fmt.upper(), subtype="PCM_16")
        path.write_bytes(path.read_bytes()[:-3001])
        return path
    return write


def _garbage(folder, good):
    (folder / "9-1-0001.flac").write_bytes(b"definitely not audio " * 50)
    return folder / "9-1-0001.flac"


@pytest.mark.parametrize("write_bad,message", [
    (_wav(rate=8000), "sample rate is 8000 Hz, expected 16000 Hz"),
    (_wav(channels=2), "2 channels, expected mono"),
    (_garbage, "not decodable audio"),
    (_truncated("flac"), "not decodable audio"),
    (_truncated("wav"), "truncated"),
])
def test_bad_audio_file_is_named(tmp_path, write_bad, message):
    bad = _one_speaker(tmp_path / "corpus", write_bad)
    with pytest.raises(ValueError, match=re.escape(bad) + ": .*" + message):
        convert(str(tmp_path / "corpus"), str(tmp_path / "out"), 1, 1, 0.5, num_threads=1)
    assert not [n for n in os.listdir(tmp_path / "out") if n.endswith(".tmp")]


def test_missing_transcript_line_names_utterance_and_file(tmp_path):
    _one_speaker(tmp_path / "corpus", _wav(), trans_lines=["9-1-0000 GOOD"])
    trans = str(tmp_path / "corpus" / "9" / "1" / "9-1.trans.txt")
    with pytest.raises(ValueError, match="9-1-0001.*" + re.escape(trans)):
        convert(str(tmp_path / "corpus"), str(tmp_path / "out"), 1, 1, 0.5)


def test_alignment_frame_count_mismatch_names_utterance(tmp_path):
    _one_speaker(tmp_path / "corpus", _wav())
    # 8000 samples = 50 frames; 52 is more than one off.
    align = tmp_path / "phones.txt"
    align.write_text("9-1-0000 " + " ".join(["3"] * 50) + "\n9-1-0001 " + " ".join(["1"] * 52))
    with pytest.raises(ValueError, match="utterance 9-1-0001: .*52 frames.*8000 samples"):
        convert(str(tmp_path / "corpus"), str(tmp_path / "out"), 1, 1, 0.5,
                alignment=str(align))


def test_shards_of_another_conversion_are_refused(tmp_path):
    _one_speaker(tmp_path / "corpus", _wav())
    out = tmp_path / "out"
    convert(str(tmp_path / "corpus"), str(out), 2, 1, 0.5)
    convert(str(tmp_path / "corpus"), str(out), 2, 1, 0.5)  # same layout: overwritten
    with pytest.raises(ValueError, match="train-00000-of-00002"):
        convert(str(tmp_path / "corpus"), str(out), 1, 1, 0.5)
