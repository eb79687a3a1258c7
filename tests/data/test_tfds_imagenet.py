"""ImageNet in the TensorFlow Datasets layout, read beside the official schema."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.data import distributed_files as files
from tf_contrastive.core.config import base_config
from tf_contrastive.data import imagenet, pipeline, tfds_imagenet


def _cfg(d):
    cfg = base_config()
    cfg.dataset.name, cfg.dataset.data_dir, cfg.dataset.image_size = "imagenet", d, 16
    cfg.dataset.num_classes, cfg.dataset.shuffle_buffer = 3, 4
    cfg.train.batch_size, cfg.eval.batch_size = 4, 64
    return cfg


def _official(root, images, labels, split, shards):
    os.makedirs(root, exist_ok=True)
    writers = [
        tf.io.TFRecordWriter(os.path.join(root, f"{split}-{s:05d}-of-{shards:05d}"))
        for s in range(shards)
    ]
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        jpeg = tf.io.encode_jpeg(image, quality=95).numpy()
        writers[i % shards].write(
            imagenet.make_example(jpeg, int(label) + 1, "n0", "x", 24, 24, f"{i}.JPEG")
        )
    for w in writers:
        w.close()


def test_tfds_records_read_as_the_same_official_records(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 24, 24, 3), np.uint8)
    labels = np.arange(12) % 3  # 0-based, label 0 included
    tfds_dir, off_dir = str(tmp_path / "tfds"), str(tmp_path / "official")
    files.write_tfds_imagenet(tfds_dir, images[:8], labels[:8], shards=2)
    files.write_tfds_imagenet(tfds_dir, images[8:], labels[8:], shards=1, split="validation")
    _official(off_dir, images[:8], labels[:8], "train", 2)
    _official(off_dir, images[8:], labels[8:], "validation", 1)
    assert tfds_imagenet.schema_of(tfds_dir) is tfds_imagenet.TFDS
    assert tfds_imagenet.schema_of(off_dir) is tfds_imagenet.OFFICIAL
    assert [os.path.basename(f) for f in imagenet.shard_files(tfds_dir, "train")] == [
        "imagenet2012-train.tfrecord-00000-of-00002",
        "imagenet2012-train.tfrecord-00001-of-00002",
    ]
    info = pipeline.describe(_cfg(tfds_dir).dataset)
    assert (info.num_train, info.num_eval, info.num_classes) == (8, 4, 3)
    for split in ("train", "test"):
        got = [
            next(iter(pipeline.build_dataset(_cfg(tfds_dir), split=split, training=False)))
            for _ in range(2)
        ]  # two reads: the same ids
        ref = next(iter(pipeline.build_dataset(_cfg(off_dir), split=split, training=False)))
        for key in ("index", "label", "image"):
            np.testing.assert_array_equal(got[0][key].numpy(), got[1][key].numpy())
            np.testing.assert_array_equal(got[0][key].numpy(), ref[key].numpy())
    ev = got[0]
    np.testing.assert_array_equal(np.sort(ev["label"].numpy()), np.sort(labels[8:]))
    batch = next(iter(pipeline.build_dataset(_cfg(tfds_dir))))
    ids = batch["index"].numpy()
    # Ids follow the sorted shards: shard 0 holds records 0, 2, 4, 6 (ids 0..3).
    by_id = np.concatenate([labels[:8][0::2], labels[:8][1::2]])
    np.testing.assert_array_equal(batch["label"].numpy(), by_id[ids])


def test_bad_tfds_inputs_are_named(tmp_path):
    d = str(tmp_path / "mixed")
    img = np.zeros((2, 8, 8, 3), np.uint8)
    files.write_tfds_imagenet(d, img, [0, 1], shards=1)
    _official(d, img, [0, 1], "train", 1)
    with pytest.raises(ValueError, match="holds official .* and TensorFlow Datasets"):
        imagenet.shard_files(d, "train")
    d = str(tmp_path / "noimage")
    os.makedirs(d)
    path = os.path.join(d, "imagenet2012-train.tfrecord-00000-of-00001")
    with tf.io.TFRecordWriter(path) as w:
        feats = {"label": tf.train.Feature(int64_list=tf.train.Int64List(value=[0]))}
        w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    cfg = _cfg(d)
    cfg.dataset.check_jpegs = False
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"imagenet2012-train.tfrecord-00000-of-00001: record 0.*record has no "
        r"image\b",
    ):
        next(iter(pipeline.build_dataset(cfg, split="train", training=False)))
