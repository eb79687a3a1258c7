"""Multi-view records: converter round trip, aligned crops, and a 3-view CMC run."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.core import views
from tf_contrastive.core.config import base_config
from tf_contrastive.data import pipeline
from tools.build_multiview_tfrecords import convert


def _write_nyu_like(root, n_train=12, n_val=4, size=24, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("validation", n_val)):
        for i in range(n):
            rgb = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            depth = rgb[..., :1]  # depth = the red channel: alignment is checkable
            normals = 255 - rgb
            for view, img, enc in (("rgb", rgb, tf.io.encode_jpeg),
                                   ("depth", depth, tf.io.encode_png),
                                   ("normals", normals, tf.io.encode_png)):
                d = root / split / view
                d.mkdir(parents=True, exist_ok=True)
                ext = "jpg" if view == "rgb" else "png"
                (d / f"{i:04d}.{ext}").write_bytes(enc(img).numpy())
        (root / split / "labels.txt").write_text("".join(f"{i:04d} {i % 3}\n" for i in range(n)))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("nyu")
    out = tmp_path_factory.mktemp("nyu_tfr")
    _write_nyu_like(root)
    convert(str(root), str(out), ["rgb", "depth", "normals"], train_shards=3,
            validation_shards=1, threads=2)
    return str(out)


def _cfg(data_dir):
    cfg = base_config()
    cfg.method = "cmc"
    cfg.dataset.name = "multiview"
    cfg.dataset.data_dir = data_dir
    cfg.dataset.view_names = ("rgb", "depth", "normals")
    cfg.dataset.view_channels = (3, 1, 3)
    cfg.dataset.num_classes = 3
    cfg.dataset.image_size = 16
    cfg.dataset.shuffle_buffer = 4
    cfg.cmc.objective = "full"
    cfg.cmc.loss = "softmax"
    cfg.cmc.num_negatives = 6
    cfg.model.width = 4
    cfg.model.embedding_dim = 8
    cfg.train.batch_size = 4
    cfg.train.epochs = 1
    cfg.eval.batch_size = 4
    cfg.eval.knn_k = 3
    cfg.eval.projector_examples = 4
    return cfg


def test_views_are_cropped_identically_and_ids_cover_the_epoch(records):
    cfg = _cfg(records)
    info = pipeline.describe(cfg.dataset)
    assert info.num_train == 12 and info.image_shape == (16, 16, 3)
    it = iter(pipeline.build_dataset(cfg, view_spec=views.DATASET_VIEWS))
    batches = [next(it) for _ in range(3)]
    ids = np.concatenate([b["index"].numpy() for b in batches])
    assert sorted(ids) == list(range(12))
    b = batches[0]
    assert b["view_rgb"].shape == (4, 16, 16, 3) and b["view_depth"].shape == (4, 16, 16, 1)
    # depth is the red channel: an aligned crop keeps them equal (up to JPEG error)
    err = np.abs(b["view_rgb"].numpy()[..., 0] - b["view_depth"].numpy()[..., 0]).mean()
    assert err < 0.06
    assert np.abs(b["view_normals"].numpy() - (1 - b["view_rgb"].numpy())).mean() < 0.06
    np.testing.assert_array_equal(b["label"].numpy(), b["index"].numpy() % 3)


def test_three_view_cmc_trains_and_resumes(records, tmp_path, capsys):
    from tf_contrastive import trainer

    cfg = _cfg(records)
    results, model = trainer.run(cfg, str(tmp_path), verbose=0, return_model=True)
    assert np.isfinite(results["final_loss"]) and len(model.banks) == 3
    assert {"loss_view_rgb_to_view_depth", "loss_view_depth_to_view_normals"} <= {
        m.name for m in model.metrics}
    cfg.train.epochs = 2
    cfg.train.allow_changes = ("train.epochs",)
    again = trainer.run(cfg, str(tmp_path), verbose=0)
    assert "resuming from" in capsys.readouterr().out and again["trained_epochs_this_run"] == 1
    assert os.path.isdir(again["export"])


def test_missing_view_is_reported_by_name(tmp_path):
    root = tmp_path / "bad"
    _write_nyu_like(root, n_train=3, n_val=1)
    os.remove(root / "train" / "depth" / "0001.png")
    with pytest.raises(ValueError, match="view 'depth' and 'rgb' disagree.*0001"):
        convert(str(root), str(tmp_path / "out"), ["rgb", "depth"], 1, 1)
