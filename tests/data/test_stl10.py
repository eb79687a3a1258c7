"""STL-10 read from a tiny stl10_binary/ folder written in the distributed layout."""

import os

import numpy as np
import pytest

from tests.data import distributed_files as files
from tf_contrastive.core.config import ConfigError, base_config, validate
from tf_contrastive.data import arrays, pipeline, stl10


def _cfg(d):
    cfg = base_config()
    cfg.dataset.name, cfg.dataset.data_dir, cfg.dataset.image_size = "stl10", d, 96
    cfg.train.batch_size = 4
    cfg.eval.batch_size = 64
    return cfg


def test_pixels_labels_and_ids_match_a_plain_column_major_decode(tmp_path):
    d = files.write_stl10(str(tmp_path), train=6, test=4, unlabeled=10)
    x, y = stl10.load("train", str(tmp_path))  # the parent folder works too
    assert x.shape == (6, 96, 96, 3) and isinstance(x.parts[0], np.memmap)  # not read whole
    for i in range(6):
        np.testing.assert_array_equal(x[i], files.stl10_decode(os.path.join(d, "train_X.bin"), i))
    np.testing.assert_array_equal(y, np.fromfile(os.path.join(d, "train_y.bin"), np.uint8) - 1)
    # train+unlabeled: the train rows (with labels) first, then the unlabelled ones (-1).
    both, yb = stl10.load("train+unlabeled", d)
    assert len(both) == 16 and yb.tolist() == y.tolist() + [-1] * 10
    ids = np.array([15, 0, 7, 5, 6])
    got = both[ids]
    for k, i in enumerate(ids):
        path, row = ("train_X.bin", i) if i < 6 else ("unlabeled_X.bin", i - 6)
        np.testing.assert_array_equal(got[k], files.stl10_decode(os.path.join(d, path), row))
    np.testing.assert_array_equal(both[4:9][1:3], both[np.array([5, 6])])  # slices stay lazy
    np.testing.assert_array_equal(stl10.load("train+unlabeled", d)[0][ids], got)  # stable ids
    # The tf.data gather reads the same pixels.
    np.testing.assert_array_equal(arrays.gatherer(both)(ids.astype(np.int32)).numpy(), got)
    mean, std = both.pixel_stats(chunk=3)
    full = np.asarray(both).astype(np.float64) / 255.0
    np.testing.assert_allclose((mean, std), (full.mean(), full.std()), rtol=1e-6)


def test_bad_files_are_named(tmp_path):
    d = files.write_stl10(str(tmp_path), train=3, test=2, unlabeled=2)
    with open(os.path.join(d, "unlabeled_X.bin"), "r+b") as f:
        f.truncate(files.STL_BYTES + 100)
    with pytest.raises(ValueError, match="unlabeled_X.bin: 27748 bytes is not a whole number"):
        stl10.load("train+unlabeled", d)
    np.array([1, 11, 2], np.uint8).tofile(os.path.join(d, "train_y.bin"))
    with pytest.raises(ValueError, match=r"train_y.bin: label 11 of image 1 is outside 1..10"):
        stl10.load("train", d)
    np.array([1, 2], np.uint8).tofile(os.path.join(d, "train_y.bin"))
    with pytest.raises(ValueError, match="train_y.bin: 2 labels for the 3 images"):
        stl10.load("train", d)
    os.remove(os.path.join(d, "test_y.bin"))
    with pytest.raises(FileNotFoundError, match="test_y.bin: missing"):
        stl10.load("test", d)
    with pytest.raises(FileNotFoundError, match="config.dataset.data_dir: .* stl10_binary"):
        stl10.load("test", str(tmp_path / "nowhere"))


def test_pipeline_pretrains_on_train_and_unlabeled_and_evaluates_on_train(tmp_path):
    d = files.write_stl10(str(tmp_path), train=6, test=4, unlabeled=10)
    cfg = _cfg(d)
    info = pipeline.describe(cfg.dataset)
    assert (info.num_train, info.num_eval, info.num_classes) == (16, 4, 10)
    _, y = stl10.load("train+unlabeled", d)
    ds = pipeline.build_dataset(cfg)
    # The images reach the stream through a per-batch read, not a graph constant.
    assert len(ds._as_serialized_graph().numpy()) < 16 * files.STL_BYTES // 4
    seen = []
    for batch in ds.take(4):
        ids = batch["index"].numpy()
        np.testing.assert_array_equal(batch["label"].numpy(), y[ids])
        assert batch["image"].shape == (4, 96, 96, 3)
        seen += ids.tolist()
    assert sorted(seen) == list(range(16))
    ev = next(iter(pipeline.build_dataset(cfg, split="train", training=False)))
    x, yt = stl10.load("train", d)
    np.testing.assert_array_equal(ev["index"].numpy(), np.arange(6))
    np.testing.assert_array_equal(ev["label"].numpy(), yt)
    np.testing.assert_allclose(ev["image"].numpy(), np.asarray(x) / 255.0, atol=1e-6)
    cfg.dataset.stl10_train = "train"
    assert pipeline.describe(cfg.dataset).num_train == 6


def test_config_rules():
    cfg = base_config()
    cfg.dataset.name, cfg.instdisc.warm_start = "stl10", True
    with pytest.raises(ConfigError, match="instdisc.warm_start"):
        validate(cfg, rules=(pipeline.check_config,))
    cfg.instdisc.warm_start, cfg.dataset.stl10_train = False, "unlabelled"
    with pytest.raises(ConfigError, match="dataset.stl10_train"):
        validate(cfg, rules=(pipeline.check_config,))
    cfg.dataset.stl10_train, cfg.dataset.data_service = "train", "grpc://localhost:5050"
    with pytest.raises(ConfigError, match="dataset.data_service"):
        validate(cfg, rules=(pipeline.check_config,))
