"""Exact epochs: every epoch is its own pass, with skipped records and with shards split
unevenly across input pipelines; a resume at epoch 1 replays the same batches."""

import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.core import views
from tf_contrastive.core.config import ConfigError, base_config
from tf_contrastive.data import imagenet, pipeline

BATCH = 4


def _write_shards(root, sizes, bad=None):
    """ImageNet-schema shards of ``sizes`` records (ids in shard order); ``bad`` =
    (shard, position) gets a PNG payload."""
    rng = np.random.default_rng(0)
    ident = 0
    for k, n in enumerate(sizes):
        with tf.io.TFRecordWriter(str(root / f"train-{k:05d}-of-{len(sizes):05d}")) as w:
            for pos in range(n):
                img = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
                enc = tf.io.encode_png(img) if (k, pos) == bad else tf.io.encode_jpeg(img)
                w.write(
                    imagenet.make_example(
                        enc.numpy(), 1 + ident % 3, "s", "t", 20, 24, "f", instance_id=ident
                    )
                )
                ident += 1
    return str(root)


def _cfg(data_dir, **ds):
    cfg = base_config()
    cfg.dataset.name = "imagenet"
    cfg.dataset.data_dir = data_dir
    cfg.dataset.image_size = 8
    cfg.dataset.shuffle_buffer = 4
    cfg.train.batch_size = BATCH
    for k, v in ds.items():
        setattr(cfg.dataset, k, v)
    return cfg


def _batches(cfg, n, ctx=None, start_epoch=0):
    it = iter(pipeline.build_dataset(cfg, ctx, view_spec=views.SINGLE, start_epoch=start_epoch))
    return [next(it) for _ in range(n)]


def _same(a, b):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["index"].numpy(), y["index"].numpy())
        np.testing.assert_array_equal(x["image"].numpy(), y["image"].numpy())


def test_skipped_record_epochs_are_completed_from_a_refill_pass(tmp_path):
    # 12 records, record 1 is bad: a pass gives 2 full batches (8 of the 11 good records);
    # the epoch's 3rd batch comes from a refill pass over the same records, not from the
    # next epoch's pass.
    cfg = _cfg(_write_shards(tmp_path, [4, 4, 4], bad=(0, 1)), skip_bad_records=True)
    steps = pipeline.steps_per_epoch(cfg, pipeline.describe(cfg.dataset))
    assert steps == 3
    stream = _batches(cfg, 2 * steps)
    good = set(range(12)) - {1}
    for e in range(2):
        epoch = stream[e * steps : (e + 1) * steps]
        ids = np.concatenate([b["index"].numpy() for b in epoch])
        first_pass, refill = ids[:8], ids[8:]
        assert len(set(first_pass)) == 8 and set(first_pass) <= good
        assert len(set(refill)) == BATCH and set(refill) <= good
    # Epoch 1 starts on its own pass: a run resumed at epoch 1 reads the same batches.
    _same(stream[steps:], _batches(cfg, steps, start_epoch=1))


def _ctx(i):
    return tf.distribute.InputContext(
        num_input_pipelines=2, input_pipeline_id=i, num_replicas_in_sync=2
    )


def test_uneven_shards_feed_equal_batches_from_each_pipeline(tmp_path):
    # Pipeline 0 reads shards 0 and 2 (5 + 3 records), pipeline 1 shard 1 (4 records):
    # with 2 records per replica batch, pipeline 1 can feed 2 steps, so an epoch is 2
    # steps and pipeline 0 leaves 4 of its 8 records out.
    cfg = _cfg(_write_shards(tmp_path, [5, 4, 3]))
    info = pipeline.describe(cfg.dataset)
    assert info.train_shards == (5, 4, 3)
    steps = pipeline.steps_per_epoch(cfg, info, num_pipelines=2)
    assert steps == 2 and pipeline.steps_per_epoch(cfg, info) == 3
    streams = [_batches(cfg, 2 * steps, _ctx(i)) for i in range(2)]
    mine = [set(range(5)) | set(range(9, 12)), set(range(5, 9))]
    for e in range(2):
        per_pipe = [
            np.concatenate([b["index"].numpy() for b in s[e * steps : (e + 1) * steps]])
            for s in streams
        ]
        ids = np.concatenate(per_pipe)
        assert len(ids) == steps * BATCH and len(set(ids)) == len(ids)  # each id at most once
        assert set(per_pipe[1]) == mine[1]  # the smaller pipeline: all its records, once
        assert set(per_pipe[0]) <= mine[0]
    for i in range(2):
        _same(streams[i][steps:], _batches(cfg, steps, _ctx(i), start_epoch=1))


def test_configured_steps_beyond_the_smallest_pipeline_are_refused(tmp_path):
    cfg = _cfg(_write_shards(tmp_path, [5, 4, 3]))
    cfg.train.steps_per_epoch = 3
    with pytest.raises(ConfigError, match="train.steps_per_epoch: 3 .*at most 2"):
        pipeline.steps_per_epoch(cfg, pipeline.describe(cfg.dataset), num_pipelines=2)
