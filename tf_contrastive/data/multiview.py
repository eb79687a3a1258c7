"""Multi-view TFRecords for CMC with more than two views (NYU-Depth style data).

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

from tf_contrastive.data import augment


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
