"""image_folder: nested folders of JPEG / PNG files read through the tf.data pipeline."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_contrastive.core import views
from tf_contrastive.core.config import ConfigError, base_config
from tf_contrastive.data import families, image_folder, pipeline

SIDE = 64  # square files: with a full-area crop the training view is the whole image


def _png(image: np.ndarray, mode: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).convert(mode).save(out, "PNG")
    return out.getvalue()


def write_mixed(
    root,
    names=(
        "a/x.jpg",
        "a/b/y.PNG",
        "c/gray.png",
        "c/rgba.png",
        "c/pal.png",
        "c/d/e/z.JPEG",
        "top.jpeg",
    ),
    seed=0,
):
    """Nested JPEGs and PNGs (RGB, grayscale, RGBA, palette) by file name, and a text file."""
    rng = np.random.default_rng(seed)
    for name in names:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Smooth (no pixel-level noise): JPEG decoders then differ by a level or two only.
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8))
        image = np.asarray(coarse.resize((SIDE, SIDE), Image.BILINEAR))
        stem = os.path.basename(name).lower()
        if stem.endswith((".jpg", ".jpeg")):
            data = tf.io.encode_jpeg(image, quality=95).numpy()
        else:
            mode = {"gray.png": "L", "rgba.png": "RGBA", "pal.png": "P"}.get(stem, "RGB")
            data = _png(image, mode)
        with open(path, "wb") as f:
            f.write(data)
    with open(os.path.join(root, "README.txt"), "w") as f:
        f.write("not an image")
    return root


def plain_decode(path: str) -> np.ndarray:
    """PIL's RGB decode (grayscale / palette expanded, alpha dropped), in [0, 1]."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), np.float32) / 255.0


def _assert_pixels(got, expect, name):
    """PNGs exactly; JPEGs within the difference of TensorFlow's default fast integer IDCT
    (the ImageNet crops' decoder) from PIL's accurate one: up to 8 levels, 1.3 on average
    on these images."""
    if name.lower().endswith(".png"):
        np.testing.assert_allclose(got, expect, atol=1e-6, err_msg=name)
    else:
        diff = np.abs(got - expect)
        assert diff.max() <= 10 / 255 and diff.mean() <= 2 / 255, (name, diff.max())


def _cfg(data_dir, **ds):
    cfg = base_config()
    cfg.dataset.name, cfg.dataset.data_dir, cfg.dataset.image_size = "image_folder", data_dir, SIDE
    cfg.train.batch_size, cfg.eval.batch_size = 2, 4
    cfg.augment.crop_scale_min = cfg.augment.crop_scale_max = 1.0
    cfg.augment.flip, cfg.augment.color_jitter, cfg.augment.grayscale_prob = False, 0.0, 0.0
    for k, v in ds.items():
        setattr(cfg.dataset, k, v)
    return cfg


def _one_epoch(cfg) -> dict[int, np.ndarray]:
    info = pipeline.describe(cfg.dataset)
    steps = pipeline.steps_per_epoch(cfg, info)
    seen = {}
    for b in pipeline.build_dataset(cfg, view_spec=views.SINGLE).take(steps):
        assert b["label"].numpy().tolist() == [-1] * len(b["label"])
        for i, x in zip(b["index"].numpy(), b["image"].numpy(), strict=True):
            seen[int(i)] = x
    return seen


def test_nested_mixed_files_match_a_plain_decode_with_stable_ids(tmp_path):
    root = write_mixed(str(tmp_path / "photos"))
    cfg = _cfg(root)
    listing = families.get("image_folder").train_listing(cfg.dataset)
    assert listing.paths == (
        "a/b/y.PNG",
        "a/x.jpg",
        "c/d/e/z.JPEG",
        "c/gray.png",
        "c/pal.png",
        "c/rgba.png",
        "top.jpeg",
    )  # sorted relative paths
    assert listing.ignored == 1 and not listing.bad
    info = pipeline.describe(cfg.dataset)
    assert (info.num_train, info.image_shape, info.knn_bank) == (7, (SIDE, SIDE, 3), False)
    assert "eval_dir" in info.eval_off  # unlabeled: kNN and probes off
    seen = _one_epoch(cfg)  # 3 batches of 2: one file left out of this epoch
    assert len(seen) == 6
    for i, x in seen.items():
        expect = plain_decode(os.path.join(root, listing.paths[i]))
        _assert_pixels(x, expect, listing.paths[i])
    # A second read (a new family object: a fresh listing) gives the same ids and pixels.
    again = image_folder.ImageFolderFamily(families.RECORDS.skipped).train_listing(cfg.dataset)
    assert again.paths == listing.paths
    for i, x in _one_epoch(cfg).items():
        np.testing.assert_array_equal(x, seen[i])


def test_adding_a_file_renumbers_the_files_after_it_and_changes_the_digest(tmp_path):
    root = write_mixed(str(tmp_path / "photos"), names=("a/1.jpg", "b/2.png", "c/3.jpg"))
    fam = families.get("image_folder")
    cfg = _cfg(root)
    before = fam.train_listing(cfg.dataset).paths
    digest = fam.run_facts(cfg.dataset)["run.train_digest"]
    assert fam.run_facts(cfg.dataset)["run.train_digest"] == digest  # re-read: unchanged
    write_mixed(root, names=("b/1.5.png",), seed=1)  # sorts between a/1.jpg and b/2.png
    after = fam.train_listing(cfg.dataset).paths  # the cached listing notices the new file
    assert after == ("a/1.jpg", "b/1.5.png", "b/2.png", "c/3.jpg")
    assert after.index("a/1.jpg") == before.index("a/1.jpg")  # ids before it unchanged
    assert [after.index(p) for p in before[1:]] == [i + 1 for i in range(1, len(before))]
    assert fam.run_facts(cfg.dataset)["run.train_digest"] != digest  # a resume would stop


def test_labeled_eval_dir_turns_knn_on(tmp_path):
    root = write_mixed(str(tmp_path / "photos"), names=("p/1.jpg", "p/2.png"))
    ev = tmp_path / "labeled"
    write_mixed(str(ev / "train"), names=("dog/1.jpg", "cat/deep/2.png", "cat/3.jpg"))
    write_mixed(str(ev / "val"), names=("dog/4.png", "cat/5.jpg"), seed=1)
    cfg = _cfg(root, eval_dir=str(ev))
    info = pipeline.describe(cfg.dataset)
    assert (info.eval_off, info.num_classes, info.num_eval, info.labeled) == ("", 2, 2, True)
    batches = list(pipeline.build_dataset(cfg, split="train", training=False))
    got = {int(i): int(y) for b in batches for i, y in zip(b["index"], b["label"], strict=True)}
    assert got == {0: 0, 1: 0, 2: 1}  # cat/3.jpg, cat/deep/2.png, dog/1.jpg; classes sorted
    (val,) = pipeline.build_dataset(cfg, split="test", training=False)
    assert val["label"].numpy().tolist() == [0, 1]
    # The 87.5% center crop of each file, resized (here 56 of 64: no resampling).
    cfg.dataset.image_size = 56
    (val,) = pipeline.build_dataset(cfg, split="test", training=False)
    for x, name in zip(val["image"].numpy(), ("cat/5.jpg", "dog/4.png"), strict=True):
        _assert_pixels(x, plain_decode(str(ev / "val" / name))[4:60, 4:60], name)
    cfg.instdisc.warm_start = True
    with pytest.raises(ConfigError, match="config.instdisc.warm_start"):
        pipeline.check_config(cfg)


def _corrupt_jpeg(path: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 3])  # header intact, body cut short


def test_bad_files_are_named_or_skipped_and_counted(tmp_path):
    root = write_mixed(str(tmp_path / "photos"), names=("a.jpg", "b.jpg", "c.png", "d.jpg"))
    with open(os.path.join(root, "b.jpg"), "w") as f:
        f.write("<html>not found</html>")  # fails the header check at listing time
    _corrupt_jpeg(os.path.join(root, "d.jpg"))  # fails only when decoded
    cfg = _cfg(root)
    with pytest.raises(
        ValueError,
        match=r"config.dataset.data_dir: 1 file\(s\) are not images: "
        rf"{root}/b.jpg \(not a JPEG or PNG: starts with 3c68746d\)",
    ):
        pipeline.describe(cfg.dataset)
    cfg.dataset.skip_bad_records = True
    assert pipeline.describe(cfg.dataset).num_train == 4  # b.jpg keeps its id, unread
    skipped = pipeline.skipped_records()
    before = int(skipped.numpy())
    seen = _one_epoch(cfg)  # 2 readable files: one batch; the refill pass completes epochs
    assert set(seen) <= {0, 2} and len(seen) == 2
    assert int(skipped.numpy()) - before >= 1  # d.jpg, counted as it is dropped
    os.remove(os.path.join(root, "b.jpg"))
    cfg.dataset.skip_bad_records = False
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=rf"image_folder: 1 file\(s\) do not decode: {root}/d.jpg",
    ):
        list(pipeline.build_dataset(cfg).take(4))  # d.jpg comes up within two passes


def test_an_empty_folder_or_one_without_images_is_a_config_error(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "notes.txt").write_text("x")
    cfg = _cfg(str(tmp_path / "empty"))
    with pytest.raises(
        ConfigError,
        match=rf"config.dataset.data_dir: {tmp_path}/empty holds no "
        "JPEG or PNG files",
    ):
        pipeline.describe(cfg.dataset)
    (tmp_path / "empty" / "sub" / "fake.jpg").write_text("x")  # an image name, no image
    cfg.dataset.skip_bad_records = True
    with pytest.raises(ConfigError, match="none of the 1 image files under"):
        pipeline.describe(cfg.dataset)
    cfg.dataset.data_dir = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match="config.dataset.data_dir: .*missing is not a folder"):
        pipeline.describe(cfg.dataset)
