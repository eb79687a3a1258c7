"""TFRecord integrity: counting from the framing, damaged shards, bad JPEG bodies, ids."""

import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import imagenet_cfg, rewrite_record, write_mixed_jpeg_folder
from tf_contrastive.core import views
from tf_contrastive.data import imagenet, pipeline, records
from tf_contrastive.data import shards as shard_lib
from tools.build_imagenet_tfrecords import convert


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagefolder")
    out = tmp_path_factory.mktemp("tfrecords")
    write_mixed_jpeg_folder(str(root))
    convert(str(root), str(out), train_shards=3, validation_shards=2, num_threads=2)
    return str(out)


def _copy(src, dst):
    """The shards without the converter's counts, as official ImageNet files come."""
    os.makedirs(dst)
    for name in os.listdir(src):
        if not name.endswith("json"):
            shutil.copy(os.path.join(src, name), dst)
    return dst


def _tf_error(path):
    """TensorFlow's own reader's damage message for ``path`` ("" if it reads it all)."""
    try:
        for _ in tf.data.TFRecordDataset(path):
            pass
    except tf.errors.DataLossError as e:
        return re.search(r"(truncated|corrupted) record at \d+", e.message).group(0)
    return ""


def test_counts_equal_tensorflows_reader(shards):
    paths = sorted(os.path.join(shards, n) for n in os.listdir(shards) if "-of-" in n)
    scans = records.scan_shards(paths)
    for path, scan in zip(paths, scans, strict=True):
        assert scan.records == sum(1 for _ in tf.data.TFRecordDataset(path)) > 0
        assert scan.damage == "" and scan.size == os.path.getsize(path)
    assert sum(s.records for s in scans) == 18


def test_truncated_shard_is_named_with_tensorflows_offset(shards, tmp_path):
    data = _copy(shards, str(tmp_path / "d"))
    path = os.path.join(data, "train-00001-of-00003")
    n = sum(1 for _ in tf.data.TFRecordDataset(path))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 100)
    scan = records.scan_shard(path)
    assert scan.records == n - 1
    assert scan.damage == _tf_error(path) == f"truncated record at {scan.offset}"
    with pytest.raises(
        ValueError,
        match=f"train-00001-of-00003: .* after {n - 1} records "
        rf"\(truncated record at {scan.offset}\)",
    ):
        shard_lib.shard_offsets(shard_lib.shard_files(data, "train"))


@pytest.mark.parametrize("bogus", [1, 1 << 40])
def test_corrupted_length_header_is_detected(shards, tmp_path, bogus):
    # A length that still fits in the file, and one far past its end: both are a
    # header CRC mismatch (not a truncation) at the record's first byte.
    data = _copy(shards, str(tmp_path / "d"))
    path = os.path.join(data, "train-00000-of-00003")
    raw = bytearray(open(path, "rb").read())
    first = int.from_bytes(raw[:8], "little")
    start = 12 + first + 4  # record 1
    length = int.from_bytes(raw[start : start + 8], "little")
    raw[start : start + 8] = (length ^ bogus).to_bytes(8, "little")
    open(path, "wb").write(raw)
    scan = records.scan_shard(path)
    assert (scan.records, scan.damage) == (1, f"corrupted record at {start}")
    assert _tf_error(path) == scan.damage


def _eval_ids(cfg):
    return sorted(
        np.concatenate(
            [b["index"].numpy() for b in pipeline.build_dataset(cfg, split="train", training=False)]
        )
    )


def test_truncated_shard_with_skipping_uses_the_readable_records(shards, tmp_path, capfd):
    data = _copy(shards, str(tmp_path / "d"))
    path = os.path.join(data, "train-00001-of-00003")
    n = sum(1 for _ in tf.data.TFRecordDataset(path))  # shard 1 holds ids 4..7
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 100)
    cfg = imagenet_cfg(data, skip_bad_records=True)
    assert pipeline.describe(cfg.dataset).num_train == 12  # the cut record keeps its id
    lost = 4 + n - 1
    assert _eval_ids(cfg) == [i for i in range(12) if i != lost]
    err = capfd.readouterr().err
    assert f"train-00001-of-00003: record {n - 1} unreadable" in err
    # Training counts it as skipped, once per pass.
    before = int(pipeline.skipped_records().numpy())
    ids = [
        i
        for b, _ in zip(pipeline.build_dataset(cfg), range(2), strict=False)
        for i in b["index"].numpy()
    ]
    assert lost not in ids
    assert int(pipeline.skipped_records().numpy()) - before >= 1
    # Without skipping, the count already names the shard.
    with pytest.raises(ValueError, match="train-00001-of-00003.*truncated record at"):
        pipeline.describe(imagenet_cfg(data).dataset)


def _corrupt_body(jpeg: bytes) -> bytes:
    """The same JPEG with bytes after its start-of-scan marker overwritten (by a marker
    with a bogus length, then zeros): the header and the magic bytes stay intact,
    the entropy-coded body does not decode."""
    sos = jpeg.index(b"\xff\xda")
    body = sos + 2 + int.from_bytes(jpeg[sos + 2 : sos + 4], "big")
    junk = b"\xff\xc4\x00\x03" + bytes(60)
    return jpeg[: body + 20] + junk + jpeg[body + 20 + len(junk) :]


def test_corrupt_jpeg_body_is_named_and_skipped(shards, tmp_path, capfd):
    data = _copy(shards, str(tmp_path / "d"))
    shard = os.path.join(data, "train-00002-of-00003")
    rec = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(shard))).numpy())
    good = rec.features.feature["image/encoded"].bytes_list.value[0]
    bad = _corrupt_body(good)
    assert bad[:3] == imagenet.JPEG_MAGIC and len(bad) == len(good)
    tf.image.extract_jpeg_shape(bad)  # the header still parses
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_jpeg(bad)
    first = shard_lib.shard_offsets(shard_lib.shard_files(data, "train"))[0][2]
    rewrite_record(tmp_path / "d", "train-00002-of-00003", 1, encoded=bad)
    cfg = imagenet_cfg(data, skip_bad_records=True)
    assert _eval_ids(cfg) == [i for i in range(12) if i != first + 1]
    assert (
        "train-00002-of-00003: record 1 rejected (payload does not decode)"
        in capfd.readouterr().err
    )
    before = int(pipeline.skipped_records().numpy())
    ids = [
        i
        for b, _ in zip(pipeline.build_dataset(cfg, view_spec=views.PAIR), range(4), strict=False)
        for i in b["index"].numpy()
    ]
    assert first + 1 not in ids
    assert int(pipeline.skipped_records().numpy()) - before >= 2  # two passes at least


def test_check_failure_without_skipping_names_the_record(shards, tmp_path):
    path = os.path.join(shards, "train-00000-of-00003")
    n = sum(1 for _ in tf.data.TFRecordDataset(path))

    third = next(iter(tf.data.TFRecordDataset(path).skip(2)))

    def reject_record_2(rec):  # a check whose op raises for record 2 only
        x = tf.where(tf.equal(rec, third), float("nan"), 0.0)
        return tf.equal(tf.debugging.check_numerics(x, "record 2"), 0.0)

    ds = records.read_shard(
        tf.constant(path), tf.constant(0, tf.int64), n, False, check=reject_record_2
    )
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="train-00000-of-00003: record 2 rejected"
    ):
        list(ds)


def test_ids_outside_the_bank_are_an_error_naming_the_record(shards):
    path = os.path.join(shards, "train-00000-of-00003")
    n = sum(1 for _ in tf.data.TFRecordDataset(path))
    # Counts that do not fit the shards: this shard's ids would run past N.
    ds = records.read_shard(tf.constant(path), tf.constant(10, tf.int64), n, True, num_ids=11)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"train-00000-of-00003: record 1 has id 11, outside the memory-"
        r"bank rows \[0, 11\)",
    ):
        list(ds)


def test_corrupt_jpeg_body_stops_training_naming_the_record(shards, tmp_path):
    """Without skipping, the default full-decode check (dataset.check_jpegs) stops the
    run naming the record, where the crop alone would train on a garbage image."""
    from tf_contrastive import trainer

    data = _copy(shards, str(tmp_path / "d"))
    shard = "train-00001-of-00003"
    rec = tf.train.Example.FromString(
        next(iter(tf.data.TFRecordDataset(os.path.join(data, shard)))).numpy()
    )
    bad = _corrupt_body(rec.features.feature["image/encoded"].bytes_list.value[0])
    rewrite_record(tmp_path / "d", shard, 0, encoded=bad)
    cfg = imagenet_cfg(data)
    cfg.model.width = 4
    cfg.train.epochs = 1
    cfg.train.export = False
    cfg.eval.knn_at_init = False
    cfg.eval.projector_examples = 0
    cfg.instdisc.num_negatives = 4
    cfg.instdisc.warm_start = False
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"{shard}: record 0 rejected \(payload does not decode\)"):
        trainer.run(cfg, str(tmp_path / "run"), verbose=0)


def test_jpeg_failing_in_the_crop_is_named_by_a_rescan(shards, tmp_path):
    """With dataset.check_jpegs=False a JPEG that fails in the crop names no record;
    the trainer's re-scan of the shards names it."""
    data = _copy(shards, str(tmp_path / "d"))
    shard = "train-00001-of-00003"
    rec = tf.train.Example.FromString(
        next(iter(tf.data.TFRecordDataset(os.path.join(data, shard)))).numpy()
    )
    good = rec.features.feature["image/encoded"].bytes_list.value[0]
    # A header announcing far more scan data than the body holds: the crop fails.
    sos = good.index(b"\xff\xda")
    bad = good[: sos + 12]
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.image.decode_and_crop_jpeg(bad, [0, 0, 8, 8])
    rewrite_record(tmp_path / "d", shard, 0, encoded=bad)
    cfg = imagenet_cfg(data, check_jpegs=False)
    error = None
    try:
        for _ in pipeline.build_dataset(cfg, view_spec=views.SINGLE):
            pass
    except tf.errors.InvalidArgumentError as e:
        error = e
    assert error is not None and shard not in error.message  # the crop names nothing
    named = pipeline.name_undecodable(cfg, error)
    assert named == (f"a JPEG did not decode: {os.path.join(data, shard)}: record 0 rejected "
                     "(payload does not decode) (set --config.dataset.skip_bad_records=True "
                     "to skip such records)")
