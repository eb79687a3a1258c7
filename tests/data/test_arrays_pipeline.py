"""In-memory datasets: IDX parsing, digits split, and the deterministic training stream."""

import gzip
import struct

import numpy as np
import pytest

from tf_contrastive.core import views
from tf_contrastive.core.config import base_config
from tf_contrastive.data import arrays, pipeline


def _digits_cfg():
    cfg = base_config()
    cfg.dataset.name = "digits"
    cfg.dataset.image_size = 8
    cfg.train.batch_size = 100
    return cfg


def test_idx_reader_round_trip_and_truncation(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    payload = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 4) + data.tobytes()
    p = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(p, "wb") as f:
        f.write(payload)
    np.testing.assert_array_equal(arrays.read_idx(str(p)), data)
    t = tmp_path / "t-idx3-ubyte"
    t.write_bytes(payload[:-5])
    with pytest.raises(ValueError, match="t-idx3-ubyte: truncated"):
        arrays.read_idx(str(t))


def test_fashion_mnist_from_debian_package_has_expected_shapes():
    x, y = arrays.load_fashion_mnist("test")
    assert x.shape == (10000, 28, 28, 1) and x.dtype == np.uint8
    assert sorted(set(y.tolist())) == list(range(10))


def test_epoch_is_a_permutation_and_resume_replays_the_same_epoch():
    cfg = _digits_cfg()
    info = pipeline.describe(cfg.dataset)
    assert info.num_train == 1500 and info.num_classes == 10
    it = iter(pipeline.build_dataset(cfg))
    steps = pipeline.steps_per_epoch(cfg, info)
    first = [next(it) for _ in range(steps)]
    ids = np.concatenate([b["index"].numpy() for b in first])
    assert len(set(ids.tolist())) == len(ids) == 1500
    second = [next(it) for _ in range(steps)]
    resumed = iter(pipeline.build_dataset(cfg, start_epoch=1))
    for a in second:
        b = next(resumed)
        np.testing.assert_array_equal(a["index"].numpy(), b["index"].numpy())
        np.testing.assert_array_equal(a["image"].numpy(), b["image"].numpy())
    # Epochs are shuffled differently, and labels follow their images.
    assert not np.array_equal(first[0]["index"].numpy(), second[0]["index"].numpy())
    _, labels = arrays.load_digits("train")
    np.testing.assert_array_equal(first[0]["label"].numpy(), labels[first[0]["index"].numpy()])


def test_pair_views_differ_and_stay_in_range():
    cfg = _digits_cfg()
    b = next(iter(pipeline.build_dataset(cfg, view_spec=views.PAIR)))
    assert b["view_0"].shape == (100, 8, 8, 1)
    assert not np.allclose(b["view_0"].numpy(), b["view_1"].numpy())
    assert b["view_0"].numpy().min() >= 0 and b["view_0"].numpy().max() <= 1


@pytest.mark.parametrize("jitter", [False, True])
@pytest.mark.parametrize("same_crop", [True, False])
def test_cmc_views_share_a_crop_unless_asked_not_to(same_crop, jitter):
    from tf_contrastive.core import color
    from tf_contrastive.methods import get_method

    cfg = _digits_cfg()
    cfg.method, cfg.cmc.views, cfg.cmc.same_crop = "cmc", "intensity_gradient", same_crop
    cfg.cmc.jitter = jitter
    cfg.augment.color_jitter = 0.4
    kind = get_method("cmc").views(cfg, pipeline.describe(cfg.dataset))
    b = next(iter(pipeline.build_dataset(cfg, view_spec=kind)))
    assert b["view_l"].shape == (100, 8, 8, 1) and b["view_ab"].shape == (100, 8, 8, 2)
    # The gradient view is the Sobel split of the intensity view exactly when they share a
    # crop: jitter, when asked for, happens before the split.
    _, grad = color.SPLITS["intensity_gradient"](b["view_l"])
    assert np.allclose(grad.numpy(), b["view_ab"].numpy(), atol=1e-5) == same_crop
    # Jitter changes each image's mean intensity, which a flip keeps.
    cfg.cmc.jitter = False
    kind = get_method("cmc").views(cfg, pipeline.describe(cfg.dataset))
    plain = next(iter(pipeline.build_dataset(cfg, view_spec=kind)))["view_l"].numpy()
    means = plain.mean(axis=(1, 2, 3)), b["view_l"].numpy().mean(axis=(1, 2, 3))
    assert np.allclose(*means, atol=1e-6) != jitter


def test_eval_split_is_ordered_and_complete():
    cfg = _digits_cfg()
    batches = list(pipeline.build_dataset(cfg, split="test", training=False))
    ids = np.concatenate([b["index"].numpy() for b in batches])
    np.testing.assert_array_equal(ids, np.arange(297))
