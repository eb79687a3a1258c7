"""Labels of every dataset family: missing / out-of-range labels name the record, the
class count comes from the data, the label base is a checked key, unlabeled data and
data without validation shards train with kNN off."""

import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import write_nyu_like
from tf_contrastive.core.config import ConfigError, base_config, sibling_config, validate
from tf_contrastive.data import audio, imagenet, labels, pipeline
from tf_contrastive.eval.knn import knn_accuracy
from tools.build_multiview_tfrecords import convert as convert_multiview

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JPEG = tf.io.encode_jpeg(tf.zeros([12, 12, 3], tf.uint8)).numpy()


def _imagenet_dir(root, stored_labels, validation=True, classes=None):
    """One train shard whose record i has label stored_labels[i] (None: no label)."""
    root.mkdir(exist_ok=True)
    splits = ["train"] + (["validation"] if validation else [])
    for split in splits:
        with tf.io.TFRecordWriter(str(root / f"{split}-00000-of-00001")) as w:
            for i, y in enumerate(stored_labels):
                ex = tf.train.Example.FromString(
                    imagenet.make_example(JPEG, 0 if y is None else y, "s", "t", 12, 12, "f", i)
                )
                if y is None:
                    del ex.features.feature["image/class/label"]
                w.write(ex.SerializeToString())
    if classes is not None:
        labels.write_classes(str(root), classes, 1)
    return str(root)


def _cfg(data_dir, **ds):
    cfg = base_config()
    cfg.dataset.name = "imagenet"
    cfg.dataset.data_dir = data_dir
    cfg.dataset.image_size = 8
    cfg.eval.batch_size = 2
    for k, v in ds.items():
        setattr(cfg.dataset, k, v)
    return cfg


def _read_labels(cfg):
    batches = pipeline.build_dataset(cfg, split="train", training=False)
    return np.concatenate([b["label"].numpy() for b in batches])


def test_missing_label_names_the_record_unless_declared_unlabeled(tmp_path):
    cfg = _cfg(_imagenet_dir(tmp_path / "d", [1, 2, None, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        _read_labels(cfg)
    msg = str(err.value)
    assert "train-00000-of-00001: record 2" in msg and "no image/class/label" in msg
    assert "dataset.labeled=False" in msg
    cfg.dataset.labeled = False
    info = pipeline.describe(cfg.dataset)
    assert not info.labeled and info.num_classes == 0
    assert info.eval_off == "config.dataset.labeled=False"
    np.testing.assert_array_equal(_read_labels(cfg), [-1] * 4)


def test_zero_label_with_base_one_names_the_record_and_the_key(tmp_path):
    cfg = _cfg(_imagenet_dir(tmp_path / "d", [0, 1, 2, 0]))
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        _read_labels(cfg)
    msg = str(err.value)
    assert "record 0" in msg and "below the label base 1" in msg
    assert "--config.dataset.label_base=0" in msg
    cfg.dataset.label_base = 0
    np.testing.assert_array_equal(_read_labels(cfg), [0, 1, 2, 0])


def test_class_count_comes_from_classes_json_and_labels_are_checked_against_it(tmp_path):
    data = _imagenet_dir(tmp_path / "d", [1, 3, 2, 4], classes=3)
    cfg = _cfg(data)
    assert pipeline.describe(cfg.dataset).num_classes == 3
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        _read_labels(cfg)
    assert "record 3" in str(err.value) and "outside [1, 4)" in str(err.value)
    assert "classes.json" in str(err.value)
    cfg.dataset.num_classes = 5
    with pytest.raises(ConfigError, match="num_classes: 5, but .*classes.json lists 3"):
        pipeline.describe(cfg.dataset)
    # Official files (no classes.json): the schema's 1000 classes, or a declared count.
    official = _cfg(_imagenet_dir(tmp_path / "o", [1, 3, 2, 4]))
    assert pipeline.describe(official.dataset).num_classes == 1000
    official.dataset.num_classes = 3
    with pytest.raises(tf.errors.InvalidArgumentError, match="record 3"):
        _read_labels(official)


def test_imagenet_converter_writes_classes_json(tmp_path):
    from tools.build_imagenet_tfrecords import convert

    for split in ("train", "val"):
        for synset in ("n01", "n02"):
            d = tmp_path / "src" / split / synset
            d.mkdir(parents=True)
            (d / "a.JPEG").write_bytes(JPEG)
    out = tmp_path / "out"
    convert(str(tmp_path / "src"), str(out), 1, 1, num_threads=1)
    meta = json.loads((out / labels.CLASSES_FILE).read_text())
    assert meta == {"num_classes": 2, "label_base": 1, "synsets": ["n01", "n02"]}
    assert pipeline.describe(_cfg(str(out)).dataset).num_classes == 2
    assert sorted(_read_labels(_cfg(str(out)))) == [0, 1]


def _readme_multiview_command():
    text = open(os.path.join(ROOT, "README.md")).read()
    found = re.search(
        r"python -m tf_contrastive\.train [^\n]*\\\n(?:[^\n]*\\\n)*[^\n]*"
        r"dataset\.name=multiview(?:[^\n]*\\\n)*[^\n]*\n",
        text,
    )
    assert found, "README: no multiview training command"
    return shlex.split(found.group(0).replace("\\\n", " "))


def test_readme_multiview_command_trains_with_knn_from_classes_json(tmp_path):
    src = tmp_path / "nyu"
    write_nyu_like(src)
    out = tmp_path / "tfr"
    convert_multiview(str(src), str(out), ["rgb", "depth", "normals"], 2, 1, threads=1)
    assert json.loads((out / labels.CLASSES_FILE).read_text())["num_classes"] == 3
    args = _readme_multiview_command()
    assert args[:3] == ["python", "-m", "tf_contrastive.train"]
    # The README's keys, on the smoke config at test size.
    keep = [a for a in args[3:] if a.startswith("--config.") and "data_dir" not in a]
    small = [
        "--config.cmc.num_negatives=6",
        "--config.train.batch_size=4",
        "--config.train.steps_per_epoch=0",
        "--config.train.epochs=1",
        "--config.dataset.shuffle_buffer=4",
        "--config.eval.knn_k=3",
        "--config.eval.batch_size=4",
        "--config.train.export=False",
        "--config.eval.knn_at_init=False",
        "--config.eval.projector_examples=0",
    ]
    workdir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "tf_contrastive.train",
        "--config=configs/smoke_cmc_digits.py",
        f"--workdir={workdir}",
        *keep,
        f"--config.dataset.data_dir={out}",
        *small,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    assert 0.0 <= results["knn_top1"] <= 1.0 and "knn_off" not in results


def test_multiview_without_labels_asks_for_labeled_false(tmp_path):
    src = tmp_path / "nyu"
    write_nyu_like(src, n_train=3, n_val=1)
    for split in ("train", "validation"):
        os.remove(src / split / "labels.txt")
    out = tmp_path / "tfr"
    convert_multiview(str(src), str(out), ["rgb", "depth"], 1, 1, threads=1)
    cfg = base_config()
    cfg.method = "cmc"
    cfg.dataset.name = "multiview"
    cfg.dataset.data_dir = str(out)
    with pytest.raises(ConfigError, match="carry no labels.*dataset.labeled=False"):
        pipeline.describe(cfg.dataset)
    cfg.dataset.labeled = False
    assert pipeline.describe(cfg.dataset).eval_off == "config.dataset.labeled=False"


def test_multiview_labels_txt_must_cover_every_stem(tmp_path):
    src = tmp_path / "nyu"
    write_nyu_like(src, n_train=3, n_val=1)
    (src / "train" / "labels.txt").write_text("0000 1\n0002 0\n")
    with pytest.raises(ValueError, match="labels.txt: no label for 1 instances.*0001"):
        convert_multiview(str(src), str(tmp_path / "tfr"), ["rgb", "depth"], 1, 1, threads=1)


def test_audio_speaker_label_outside_the_speaker_list_names_the_record(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "validation"):
        with tf.io.TFRecordWriter(str(tmp_path / f"{split}-00000-of-00001")) as w:
            for i, speaker in enumerate([0, 1, 2]):
                wave = rng.integers(-1000, 1000, 1600, dtype=np.int16)
                w.write(audio.make_example(wave, 16000, "s", speaker, f"u{i}", "", i))
    (tmp_path / audio.METADATA_FILE).write_text(
        json.dumps({"speakers": ["a", "b"], "sample_rate": 16000, "num_phones": 0})
    )
    cfg = base_config()
    cfg.method = "cpc_audio"
    cfg.dataset.name = "audio"
    cfg.dataset.data_dir = str(tmp_path)
    cfg.dataset.audio_window = 1600
    cfg.eval.batch_size = 3
    assert pipeline.describe(cfg.dataset).num_classes == 2
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        _read_labels(cfg)
    assert "record 2" in str(err.value) and "audio/speaker_label 2 is outside [0, 2)" in str(
        err.value
    )


def test_in_memory_labels_checked_against_a_declared_count():
    cfg = sibling_config(os.path.join(ROOT, "configs", "x.py"), "smoke_instdisc_digits.py")
    assert pipeline.describe(cfg.dataset).num_classes == 10
    cfg.dataset.num_classes = 5
    with pytest.raises(ConfigError, match="digits train example \\d+ has label [5-9]"):
        pipeline.describe(cfg.dataset)


def test_label_keys_are_validated():
    cfg = base_config()
    cfg.dataset.label_base = 2
    with pytest.raises(ConfigError, match="dataset.label_base: must be 0 or 1"):
        validate(cfg)
    cfg.dataset.label_base = 1
    with pytest.raises(ConfigError, match="fashion_mnist labels are 0-based"):
        validate(cfg, rules=(pipeline.check_config,))
    cfg.dataset.label_base = -1
    cfg.dataset.num_classes = -3
    with pytest.raises(ConfigError, match="dataset.num_classes: must be >= 0"):
        validate(cfg)


def test_knn_refuses_labels_beyond_its_classes():
    feats = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="label 3 is outside the 3 classes"):
        knn_accuracy(feats, np.array([0, 1, 2]), feats, np.array([0, 1, 3]), 3, k=2)


def test_train_only_data_dir_trains_with_knn_off(tmp_path, capsys):
    from tf_contrastive import trainer

    data = _imagenet_dir(tmp_path / "d", [1, 2, 3, 1, 2, 3, 1, 2], validation=False)
    cfg = sibling_config(os.path.join(ROOT, "configs", "x.py"), "smoke_instdisc_digits.py")
    cfg.dataset.name = "imagenet"
    cfg.dataset.data_dir = data
    cfg.dataset.shuffle_buffer = 4
    cfg.instdisc.num_negatives = 4
    cfg.train.batch_size = 4
    cfg.train.steps_per_epoch = 0
    cfg.train.epochs = 1
    cfg.train.export = False
    results = trainer.run(cfg, str(tmp_path / "run"), verbose=0)
    reason = f"no validation shards in {data}"
    assert results["knn_off"] == reason and "knn_top1" not in results
    assert f"kNN monitor, final kNN and projector off: {reason}" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "results.json").read_text())["knn_off"] == reason
    assert not os.path.exists(tmp_path / "run" / "tensorboard" / "projector")


def test_unlabeled_digits_train_with_knn_off(tmp_path, capsys):
    from tf_contrastive import trainer

    cfg = sibling_config(os.path.join(ROOT, "configs", "x.py"), "smoke_instdisc_digits.py")
    cfg.dataset.labeled = False
    cfg.train.epochs = 1
    cfg.train.export = False
    cfg.instdisc.warm_start = False  # a pass over the data that this test does not need
    results = trainer.run(cfg, str(tmp_path), verbose=0)
    assert results["knn_off"] == "config.dataset.labeled=False"
    assert "knn_top1_at_init" not in results and np.isfinite(results["final_loss"])
    assert "projector off: config.dataset.labeled=False" in capsys.readouterr().out
