"""ImageNet TFRecords: converter -> official schema -> reader, ids, and bad input."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import imagenet_cfg, rewrite_record, write_mixed_jpeg_folder
from tf_contrastive.core import views
from tf_contrastive.data import pipeline, shards
from tools.build_imagenet_tfrecords import convert

SYNSETS = ["n01440764", "n01443537", "n01484850"]



@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagefolder")
    out = tmp_path_factory.mktemp("tfrecords")
    write_mixed_jpeg_folder(str(root))
    with open(root / "synsets.txt", "w") as f:
        f.write("n01440764 tench, Tinca tinca\nn01443537 goldfish\n")
    counts = convert(str(root), str(out), train_shards=3, validation_shards=2,
                     num_threads=2, synset_text=str(root / "synsets.txt"))
    return str(out), counts


def _records(path):
    out = []
    for raw in tf.data.TFRecordDataset(path):
        ex = tf.train.Example.FromString(raw.numpy())
        out.append(ex.features.feature)
    return out


def test_shard_names_counts_and_official_keys(converted):
    out, counts = converted
    assert sorted(os.listdir(out)) == sorted(
        ["classes.json", "record_counts.json"] + [f"train-0000{i}-of-00003" for i in range(3)]
        + [f"validation-0000{i}-of-00002" for i in range(2)])
    assert sum(v["records"] for k, v in counts.items() if k.startswith("train")) == 12
    assert sum(v["records"] for k, v in counts.items() if k.startswith("validation")) == 6
    with open(os.path.join(out, "record_counts.json")) as f:
        assert json.load(f) == counts
    official = {"image/encoded", "image/class/label", "image/class/synset", "image/class/text",
                "image/height", "image/width", "image/format", "image/filename",
                "image/colorspace", "image/channels"}
    labels, texts = [], {}
    for shard in sorted(os.listdir(out)):
        if shard.startswith("train"):
            for feat in _records(os.path.join(out, shard)):
                assert official <= set(feat.keys())
                enc = feat["image/encoded"].bytes_list.value[0]
                assert enc[:3] == b"\xff\xd8\xff"  # PNG and grayscale re-encoded as JPEG
                img = tf.io.decode_jpeg(enc)
                assert img.shape[2] == 3
                assert img.shape[0] == feat["image/height"].int64_list.value[0]
                assert img.shape[1] == feat["image/width"].int64_list.value[0]
                label = feat["image/class/label"].int64_list.value[0]
                synset = feat["image/class/synset"].bytes_list.value[0].decode()
                assert label == SYNSETS.index(synset) + 1  # 1-based
                labels.append(label)
                texts[synset] = feat["image/class/text"].bytes_list.value[0].decode()
    assert sorted(labels) == [1] * 5 + [2] * 4 + [3] * 3
    assert texts["n01440764"] == "tench, Tinca tinca"



def test_derived_ids_equal_written_ids_and_are_stable(converted):
    out, _ = converted
    cfg = imagenet_cfg(out)
    seen = {}
    for _ in range(2):  # Two passes: the same image gets the same id.
        for b in pipeline.build_dataset(cfg, split="train", training=False):
            for idx, img in zip(b["index"].numpy(), b["image"].numpy(), strict=True):
                if idx in seen:
                    np.testing.assert_array_equal(seen[idx], img)
                seen[idx] = img
    assert sorted(seen) == list(range(12))
    files = shards.shard_files(out, "train")
    offsets, total = shards.shard_offsets(files)
    assert total == 12
    for f, off in zip(files, offsets, strict=True):
        for pos, feat in enumerate(_records(f)):
            assert feat["image/id"].int64_list.value[0] == off + pos


def test_training_batches_cover_every_id_once_per_epoch(converted):
    out, _ = converted
    keras.utils.set_random_seed(0)  # as the trainer does: no tensor-seeded ops may break
    cfg = imagenet_cfg(out)
    ds = pipeline.build_dataset(cfg, view_spec=views.PAIR)
    it = iter(ds)
    epoch = [next(it) for _ in range(3)]  # 12 images / batch 4
    ids = np.concatenate([b["index"].numpy() for b in epoch])
    assert sorted(ids) == list(range(12))
    b = epoch[0]
    assert b["view_0"].shape == (4, 32, 32, 3) and b["view_1"].shape == (4, 32, 32, 3)
    assert 0.0 <= float(tf.reduce_min(b["view_0"])) and float(tf.reduce_max(b["view_0"])) <= 1.0
    assert not np.allclose(b["view_0"].numpy(), b["view_1"].numpy())
    # Resuming at epoch 1 reads exactly what the uninterrupted stream reads next.
    cont = [next(it) for _ in range(3)]
    resumed = iter(pipeline.build_dataset(cfg, view_spec=views.PAIR, start_epoch=1))
    for a in cont:
        r = next(resumed)
        np.testing.assert_array_equal(a["index"].numpy(), r["index"].numpy())
        np.testing.assert_allclose(a["view_0"].numpy(), r["view_0"].numpy())


def test_order_within_the_shuffle_buffer_changes_every_epoch(converted):
    # A seeded Dataset.shuffle rebuilt per epoch repeats one permutation; the
    # keyed shuffle must not (else in-batch negatives repeat their groups).
    out, _ = converted
    cfg = imagenet_cfg(out, shuffle_buffer=12)
    it = iter(pipeline.build_dataset(cfg, view_spec=views.SINGLE))
    epochs = [np.concatenate([next(it)["index"].numpy() for _ in range(3)]) for _ in range(3)]
    assert all(sorted(e) == list(range(12)) for e in epochs)
    assert len({tuple(e) for e in epochs}) == 3


def test_counts_cache_is_written_for_official_data_without_one(converted, tmp_path):
    out, _ = converted
    data = tmp_path / "official"
    data.mkdir()
    for name in os.listdir(out):
        if name.startswith("train"):
            (data / name).write_bytes(open(os.path.join(out, name), "rb").read())
    files = shards.shard_files(str(data), "train")
    offsets, total = shards.shard_offsets(files)
    assert total == 12 and offsets[0] == 0
    assert (data / "record_counts.json").exists()


def _copy_with(tmp_path, out, mutate):
    data = tmp_path / "bad"
    data.mkdir()
    for name in os.listdir(out):
        if name.endswith("json"):
            continue
        (data / name).write_bytes(open(os.path.join(out, name), "rb").read())
    return data, mutate(data)


def test_truncated_shard_error_names_the_file(converted, tmp_path):
    out, _ = converted

    def truncate(d):
        p = d / "train-00001-of-00003"
        p.write_bytes(p.read_bytes()[:-100])
        return str(p)

    data, bad = _copy_with(tmp_path, out, truncate)
    with pytest.raises(ValueError, match="train-00001-of-00003.*truncated"):
        pipeline.describe(imagenet_cfg(str(data)).dataset)



@pytest.mark.parametrize("kind,reason", [("png", "not a JPEG"), ("missing", "no image/encoded")])
def test_bad_record_error_names_file_and_position(converted, tmp_path, kind, reason):
    out, _ = converted
    png = tf.io.encode_png(tf.zeros([8, 8, 3], tf.uint8)).numpy()
    data, bad = _copy_with(tmp_path, out, lambda d: rewrite_record(
        d, "train-00000-of-00003", 1, encoded=png, drop_encoded=kind == "missing"))
    cfg = imagenet_cfg(str(data))
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        for _ in pipeline.build_dataset(cfg, split="train", training=False):
            pass
    assert "train-00000-of-00003: record 1" in str(err.value) and reason in str(err.value)
    # Opt-in skipping drops exactly that record and says so.
    cfg.dataset.skip_bad_records = True
    ids = np.concatenate([b["index"].numpy() for b in
                          pipeline.build_dataset(cfg, split="train", training=False)])
    assert sorted(ids) == [i for i in range(12) if i != 1]


def test_skipped_training_records_are_counted(converted, tmp_path):
    out, _ = converted
    png = tf.io.encode_png(tf.zeros([8, 8, 3], tf.uint8)).numpy()
    data, _ = _copy_with(tmp_path, out, lambda d: rewrite_record(
        d, "train-00000-of-00003", 1, encoded=png))
    cfg = imagenet_cfg(str(data), skip_bad_records=True)
    before = int(pipeline.skipped_records().numpy())
    ids = []
    for batch, _ in zip(pipeline.build_dataset(cfg), range(4), strict=False):
        ids.extend(batch["index"].numpy().tolist())
    assert 1 not in ids  # 11 good records a pass: two batches of 4 per epoch
    skipped = int(pipeline.skipped_records().numpy()) - before
    # Once per pass over the data: two passes read, a third perhaps begun by prefetching.
    assert 2 <= skipped <= 3
