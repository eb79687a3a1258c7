"""Multi-view TFRecords for CMC with more than two views (NYU-Depth style data): the
dataset family ``dataset.name = "multiview"``.

Schema, one tf.train.Example per instance:

* ``views/<name>/encoded``: the encoded image of view ``<name>`` (PNG or JPEG),
* ``views/<name>/format``: ``png`` or ``jpeg``,
* ``image/id``: the instance id (int64, 0..N-1, the memory-bank row),
* ``image/class/label``: 0-based label, -1 when unlabelled.

Shards are named ``train-00000-of-00004`` / ``validation-...`` as for ImageNet,
with a ``record_counts.json`` beside them. The views of an instance are aligned
pixel for pixel, so training takes the same random crop (and flip) of every view.
"""

from __future__ import annotations

import tensorflow as tf

from tf_contrastive.core import views as views_lib
from tf_contrastive.core.config import ConfigError
from tf_contrastive.data import augment, family, labels, shards


def make_multiview_example(views: dict[str, bytes], instance_id: int, label: int = -1,
                           formats: dict[str, str] | None = None) -> bytes:
    """One serialized example holding every view's encoded image."""
    feats = {
        "image/id": tf.train.Feature(int64_list=tf.train.Int64List(value=[instance_id])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    for name, data in views.items():
        fmt = (formats or {}).get(name) or ("png" if data[:4] == b"\x89PNG" else "jpeg")
        feats[f"views/{name}/encoded"] = tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[data]))
        feats[f"views/{name}/format"] = tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[fmt.encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def parse_views(serialized: tf.Tensor, names, channels, size: int, where: tf.Tensor):
    """-> ({name: float [size, size, c] in [0, 1]}, id, label); a missing view names the
    shard and record in the error."""
    spec = {f"views/{n}/encoded": tf.io.FixedLenFeature([], tf.string, default_value="")
            for n in names}
    spec["image/id"] = tf.io.FixedLenFeature([], tf.int64, default_value=-1)
    spec["image/class/label"] = tf.io.FixedLenFeature([], tf.int64, default_value=-1)
    ex = tf.io.parse_single_example(serialized, spec)
    out = {}
    for name, c in zip(names, channels, strict=True):
        data = ex[f"views/{name}/encoded"]
        check = tf.debugging.Assert(tf.strings.length(data) > 0,
                                    ["multi-view record has no view", name, "at", where])
        with tf.control_dependencies([check]):
            image = tf.io.decode_image(data, channels=c, expand_animations=False)
        image.set_shape([None, None, c])
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, [size, size],
                                method="bilinear", antialias=True)
        out[name] = tf.clip_by_value(image, 0.0, 1.0)
    return out, tf.cast(ex["image/id"], tf.int32), tf.cast(ex["image/class/label"], tf.int32)


def aligned_crop(views: dict[str, tf.Tensor], seed: tf.Tensor, size: int,
                 scale: tuple[float, float], flip: bool) -> dict[str, tf.Tensor]:
    """The same random-resized crop (and flip) of every view of one instance."""
    s_box, s_flip = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    box = augment.random_crop_boxes(s_box, 1, scale)
    do_flip = tf.random.stateless_uniform([], s_flip) < 0.5
    out = {}
    for name, image in views.items():
        crop = tf.image.crop_and_resize(image[None], box, [0], [size, size])[0]
        if flip:
            crop = tf.where(do_flip, tf.reverse(crop, axis=[1]), crop)
        out[name] = crop
    return out


class MultiviewFamily(family.RecordFamily):
    """Named views of each instance: the same random crop (and flip) of every view for
    training, under ``view_<name>``; the first (core) view as ``image`` for evaluation.
    Multi-view records do not take ``train_limit`` / ``eval_limit``."""

    source = views_lib.NAMED_VIEWS
    label_schema = labels.LabelSchema(base=0, key="image/class/label")
    limited = False

    def check_config(self, cfg) -> None:
        names, channels = cfg.dataset.view_names, cfg.dataset.view_channels
        if len(names) < 2 or len(names) != len(channels):
            raise ConfigError("config.dataset.view_names: need >= 2 names and one channel "
                              f"count per name, got {names} / {channels}")

    def input_shape(self, ds_cfg):
        size, c = int(ds_cfg.image_size), int(ds_cfg.view_channels[0])
        return (size, size, c), (0.5,) * c, (0.25,) * c

    def _parse(self, cfg):
        names, channels = tuple(cfg.dataset.view_names), tuple(cfg.dataset.view_channels)
        spec = self.label_spec(cfg.dataset)

        def parse(rec, ident, pos, path):
            where = shards.where(pos, path)
            views, _, raw = parse_views(rec, names, channels, cfg.dataset.image_size, where)
            label = labels.check_label(raw, spec, self.label_schema.key, where)
            return views, tf.cast(ident, tf.int32), label
        return parse

    def training(self, cfg, view_spec, part):
        scale = (cfg.augment.crop_scale_min, cfg.augment.crop_scale_max)
        parse = self._parse(cfg)

        def one_pass(epoch):
            epoch_seed = tf.cast(cfg.seed, tf.int64) * 1_000_003 + epoch
            ds = self.records(cfg, "train", part, epoch=epoch)

            def make(rec, ident, pos, path):
                views, index, label = parse(rec, ident, pos, path)
                seed = tf.stack([epoch_seed, tf.cast(index, tf.int64)])
                crops = aligned_crop(views, seed, cfg.dataset.image_size, scale,
                                     cfg.augment.flip)
                out = {f"view_{name}": crop for name, crop in crops.items()}
                out["index"], out["label"] = index, label
                return out

            ds = ds.map(make, num_parallel_calls=family.AUTOTUNE)
            ds = shards.keyed_shuffle(ds.map(shards.with_order_key(epoch_seed)),
                                      cfg.dataset.shuffle_buffer)
            return ds.batch(part.per_replica, drop_remainder=True)

        return family.Training(one_pass)

    def eval_stream(self, cfg, split, part):
        parse = self._parse(cfg)
        first = cfg.dataset.view_names[0]

        def make(rec, ident, pos, path):
            views, index, label = parse(rec, ident, pos, path)
            return {"image": views[first], "label": label, "index": index}

        ds = self.records(cfg, split, part)
        return ds.map(make, num_parallel_calls=family.AUTOTUNE).batch(part.per_replica)
