"""data/shards.py and data/families.py: indexes follow the data on disk (nobody clears a
cache), and an unknown dataset name lists the known families."""

import pytest
import tensorflow as tf

from tf_contrastive.core.config import ConfigError, base_config
from tf_contrastive.data import families, pipeline, shards


def _write(path, n):
    with tf.io.TFRecordWriter(str(path)) as w:
        for i in range(n):
            w.write(b"x" * (i + 1))


def test_catalog_reindexes_shards_rewritten_in_place(tmp_path):
    _write(tmp_path / "train-00000-of-00002", 3)
    _write(tmp_path / "train-00001-of-00002", 2)
    catalog = shards.ShardCatalog()
    first = catalog.index(str(tmp_path), "train")
    assert (first.offsets, first.total, first.limited(4)) == ((0, 3), 5, (3, 1))
    assert catalog.index(str(tmp_path), "train") is first  # unchanged shards: kept
    _write(tmp_path / "train-00001-of-00002", 6)  # same name, new size
    assert catalog.index(str(tmp_path), "train").total == 9
    _write(tmp_path / "train-00002-of-00002", 1)  # a new shard
    assert catalog.index(str(tmp_path), "train").offsets == (0, 3, 9)
    assert not catalog.has_split(str(tmp_path), "validation")


def test_an_unknown_dataset_lists_the_families():
    cfg = base_config()
    cfg.dataset.name = "cifar"
    known = r"\('fashion_mnist', 'digits', 'imagenet', 'multiview', 'audio'"
    with pytest.raises(ConfigError, match=f"config.dataset.name: 'cifar' is not one of {known}"):
        pipeline.describe(cfg.dataset)
    with pytest.raises(ConfigError, match="config.dataset.name"):
        families.check_config(cfg)
