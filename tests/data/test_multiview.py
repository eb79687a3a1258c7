"""Multi-view records: converter round trip, aligned crops, and a 3-view CMC run."""

import os

import numpy as np
import pytest

from tests.helpers import write_nyu_like
from tf_contrastive.core import views
from tf_contrastive.core.config import base_config
from tf_contrastive.data import pipeline
from tools.build_multiview_tfrecords import convert


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("nyu")
    out = tmp_path_factory.mktemp("nyu_tfr")
    write_nyu_like(root)
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


def test_three_view_cmc_trains_and_exports(records, tmp_path):
    # Resuming is the trainer's part, not the family's: tests/e2e resumes CMC on ImageNet
    # records bit-identically after a SIGKILL; extending epochs is test_fingerprint's.
    from tf_contrastive import trainer

    cfg = _cfg(records)
    results, model = trainer.run(cfg, str(tmp_path), verbose=0, return_model=True)
    assert np.isfinite(results["final_loss"]) and len(model.banks) == 3
    assert {"loss_view_rgb_to_view_depth", "loss_view_depth_to_view_normals"} <= {
        m.name for m in model.metrics}
    assert os.path.isdir(results["export"])


def test_missing_view_is_reported_by_name(tmp_path):
    root = tmp_path / "bad"
    write_nyu_like(root, n_train=3, n_val=1)
    os.remove(root / "train" / "depth" / "0001.png")
    with pytest.raises(ValueError, match="view 'depth' and 'rgb' disagree.*0001"):
        convert(str(root), str(tmp_path / "out"), ["rgb", "depth"], 1, 1)
