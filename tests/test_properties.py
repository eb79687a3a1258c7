"""Property-based tests (hypothesis) of the record decoders and the config validation.

Decoders: any record either decodes to exactly what was written or is refused
with an error naming the shard and the record (or, with skip_bad, flagged and
empty); never garbage. Validation: any value either passes or raises a
ConfigError naming the key; never another exception, never a silent pass of
an out-of-range value checked below.
"""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tf_contrastive.core.config import ConfigError, base_config
from tf_contrastive.data import audio, imagenet, labels
from tf_contrastive.data.pipeline import DatasetInfo
from tf_contrastive.methods import validate

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
FILE = tf.constant("shard-00007")


def _audio_record(pcm: bytes | None, num_samples: int, label: int) -> bytes:
    feats = {"audio/num_samples": audio._ints([num_samples]),
             "audio/speaker_label": audio._ints([label])}
    if pcm is not None:
        feats["audio/encoded"] = audio._bytes(pcm)
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


@SETTINGS
@given(samples=st.lists(st.integers(-32768, 32767), max_size=400),
       label=st.integers(0, 10_000), phones=st.lists(st.integers(0, 60), max_size=5))
def test_audio_records_decode_to_what_was_written(samples, label, phones):
    pcm = np.array(samples, np.int16)
    rec = audio.make_example(pcm, 16000, "spk", label, "utt", "", 3, phones)
    if not samples:  # an empty utterance carries no audio: refused like a missing field
        with pytest.raises(tf.errors.InvalidArgumentError, match="shard-00007: record 5"):
            audio.parse_record(tf.constant(rec), tf.constant(5, tf.int64), FILE, False)
        return
    wave, got_label, got_phones, ok = audio.parse_record(
        tf.constant(rec), tf.constant(5, tf.int64), FILE, False)
    assert bool(ok) and int(got_label) == label
    np.testing.assert_array_equal(wave.numpy(), pcm.astype(np.float32) / 32768.0)
    np.testing.assert_array_equal(got_phones.numpy(), phones)


@SETTINGS
@given(pcm=st.one_of(st.none(), st.binary(max_size=64)), num_samples=st.integers(-1, 40),
       skip=st.booleans())
def test_damaged_audio_records_are_refused_naming_the_record(pcm, num_samples, skip):
    valid = pcm is not None and len(pcm) > 0 and len(pcm) == 2 * num_samples
    rec = tf.constant(_audio_record(pcm, num_samples, 1))
    args = (rec, tf.constant(9, tf.int64), FILE, skip)
    if valid:
        wave, _, _, ok = audio.parse_record(*args)
        assert bool(ok)
        np.testing.assert_array_equal(wave.numpy(),
                                      np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0)
    elif skip:
        wave, _, _, ok = audio.parse_record(*args)
        assert not bool(ok) and wave.shape == (0,)
    else:
        with pytest.raises(tf.errors.InvalidArgumentError, match="shard-00007: record 9"):
            audio.parse_record(*args)


@SETTINGS
@given(payload=st.one_of(st.binary(max_size=40),
                         st.binary(max_size=40).map(lambda b: imagenet.JPEG_MAGIC + b)),
       label=st.integers(1, 1000), skip=st.booleans())
def test_imagenet_records_pass_only_jpeg_payloads(payload, label, skip):
    rec = tf.constant(imagenet.make_example(payload, label, "n0", "x", 1, 1, "f.JPEG"))
    args = (rec, tf.constant(2, tf.int64), FILE, skip)
    is_jpeg = payload.startswith(imagenet.JPEG_MAGIC)
    if is_jpeg or skip:
        encoded, got_label, ok = imagenet.parse_record(*args)
        assert bool(ok) == is_jpeg and int(got_label) == label  # as stored (1-based)
        if is_jpeg:
            assert encoded.numpy() == payload
    else:
        with pytest.raises(tf.errors.InvalidArgumentError, match="shard-00007: record 2"):
            imagenet.parse_record(*args)


@SETTINGS
@given(raw=st.integers(-3, 12), base=st.sampled_from([0, 1]), n=st.integers(1, 10))
def test_labels_pass_only_inside_base_and_class_count(raw, base, n):
    spec = labels.LabelSpec(True, base, n, "classes.json")
    where = tf.constant("shard-00007: record 2")
    if base <= raw < base + n:
        assert int(labels.check_label(tf.constant(raw), spec, "image/class/label", where)) == (
            raw - base)
    else:
        with pytest.raises(tf.errors.InvalidArgumentError, match="shard-00007: record 2"):
            labels.check_label(tf.constant(raw), spec, "image/class/label", where)


# (key, strategy of values, predicate of the values validate() must accept)
_RANGES = [
    ("instdisc.temperature", st.floats(-1, 1, allow_nan=False), lambda v: v > 0),
    ("instdisc.momentum", st.floats(-1, 2, allow_nan=False), lambda v: 0 <= v < 1),
    ("instdisc.num_negatives", st.integers(-5, 2000), lambda v: 0 < v < 1500),
    ("train.batch_size", st.integers(-3, 600), lambda v: v >= 1 and v % 2 == 0),
    ("optimizer.learning_rate", st.floats(-1, 1, allow_nan=False), lambda v: v > 0),
    ("augment.grayscale_prob", st.floats(-1, 2, allow_nan=False), lambda v: 0 <= v <= 1),
    ("dataset.image_size", st.integers(-2, 64), lambda v: v >= 8),
    ("train.epochs", st.integers(-2, 5), lambda v: v >= 1),
]


@SETTINGS
@given(data=st.data())
def test_config_values_pass_or_fail_naming_their_key(data):
    key, values, accepted = data.draw(st.sampled_from(_RANGES))
    value = data.draw(values)
    cfg = base_config()
    cfg.instdisc.num_negatives = 64
    cfg.train.batch_size = 32
    section, name = key.split(".")
    cfg[section][name] = value
    try:
        validate(cfg, DatasetInfo(1500, 500, 10, (28, 28, 1), (0.5,), (0.25,)), num_replicas=2)
    except ConfigError as e:
        assert not accepted(value), f"{key}={value!r} refused: {e}"
        assert f"config.{key}" in str(e)
    else:
        assert accepted(value), f"{key}={value!r} accepted"
