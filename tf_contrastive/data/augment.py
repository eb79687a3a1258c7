"""Augmentations as pure, stateless TensorFlow ops.

Every random op takes an explicit ``seed`` (shape [2] int) and uses the
``tf.random.stateless_*`` family, so a batch's augmentation is a function of
(config seed, epoch, batch number): a resumed run sees the same views.

Photometric ops work on a whole batch at once (one op per batch instead of one
per image), which is what makes small-image training input-bound no longer.
"""

from __future__ import annotations

import tensorflow as tf

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EVAL_CROP_FRACTION = 0.875  # 224 of 256, the usual ImageNet center crop.


def _split(seed: tf.Tensor, n: int) -> list[tf.Tensor]:
    return list(tf.unstack(tf.random.experimental.stateless_split(seed, num=n)))


def random_crop_boxes(seed: tf.Tensor, batch: int, scale: tuple[float, float],
                      ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tf.Tensor:
    """[batch, 4] normalised (y1, x1, y2, x2) boxes of random area and aspect."""
    s_area, s_ratio, s_y, s_x = _split(seed, 4)
    area = tf.random.stateless_uniform([batch], s_area, scale[0], scale[1])
    log_r = tf.random.stateless_uniform([batch], s_ratio, tf.math.log(ratio[0]),
                                        tf.math.log(ratio[1]))
    r = tf.exp(log_r)
    w = tf.minimum(tf.sqrt(area * r), 1.0)
    h = tf.minimum(tf.sqrt(area / r), 1.0)
    y1 = tf.random.stateless_uniform([batch], s_y) * (1.0 - h)
    x1 = tf.random.stateless_uniform([batch], s_x) * (1.0 - w)
    return tf.stack([y1, x1, y1 + h, x1 + w], axis=1)


def random_resized_crop(images: tf.Tensor, seed: tf.Tensor, size: int,
                        scale: tuple[float, float]) -> tf.Tensor:
    """Batched random-resized crop of float images [B, H, W, C] to size x size."""
    batch = tf.shape(images)[0]
    boxes = random_crop_boxes(seed, batch, scale)
    return tf.image.crop_and_resize(images, boxes, tf.range(batch), [size, size])


def grayscale(images: tf.Tensor) -> tf.Tensor:
    """ITU-R 601 luma, keeping the channel count."""
    if images.shape[-1] == 1:
        return images
    gray = tf.image.rgb_to_grayscale(images)
    return tf.broadcast_to(gray, tf.shape(images))


def _per_image(seed: tf.Tensor, batch: tf.Tensor, lo: float, hi: float) -> tf.Tensor:
    return tf.random.stateless_uniform([batch, 1, 1, 1], seed, lo, hi)


def color_jitter(images: tf.Tensor, seed: tf.Tensor, strength: float) -> tf.Tensor:
    """Brightness, contrast, saturation and hue jitter of ``strength`` (torchvision's
    ColorJitter(s, s, s, min(s, 0.5)) semantics), applied in that fixed order.

    Grayscale images get brightness and contrast only.
    """
    if strength <= 0:
        return images
    batch = tf.shape(images)[0]
    s_b, s_c, s_s, s_h = _split(seed, 4)
    lo, hi = max(0.0, 1.0 - strength), 1.0 + strength
    x = images * _per_image(s_b, batch, lo, hi)
    mean = tf.reduce_mean(grayscale(x)[..., :1], axis=[1, 2, 3], keepdims=True)
    x = (x - mean) * _per_image(s_c, batch, lo, hi) + mean
    if images.shape[-1] == 3:
        x = tf.clip_by_value(x, 0.0, 1.0)
        gray = grayscale(x)
        x = gray + (x - gray) * _per_image(s_s, batch, lo, hi)
        x = tf.clip_by_value(x, 0.0, 1.0)
        hue = min(strength, 0.5)
        # TF's fused AdjustHue kernel (RGB -> HSV, h + delta mod 1, back) per image:
        # 2x faster for the whole jitter than rgb_to_hsv/hsv_to_rgb on the batch.
        delta = tf.reshape(_per_image(s_h, batch, -hue, hue), [-1])
        x = tf.map_fn(lambda a: tf.image.adjust_hue(a[0], a[1]), (x, delta),
                      fn_output_signature=x.dtype)
    return tf.clip_by_value(x, 0.0, 1.0)


def random_flip(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    flip = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed) < 0.5
    return tf.where(flip, tf.reverse(images, axis=[2]), images)


def random_grayscale(images: tf.Tensor, seed: tf.Tensor, prob: float) -> tf.Tensor:
    if prob <= 0 or images.shape[-1] == 1:
        return images
    pick = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed) < prob
    return tf.where(pick, grayscale(images), images)


def photometric(images: tf.Tensor, seed: tf.Tensor, aug_cfg) -> tf.Tensor:
    """Flip, colour jitter and random grayscale of a batch in [0, 1]."""
    s_flip, s_jit, s_gray = _split(seed, 3)
    x = random_flip(images, s_flip) if aug_cfg.flip else images
    x = color_jitter(x, s_jit, aug_cfg.color_jitter)
    return random_grayscale(x, s_gray, aug_cfg.grayscale_prob)


def decode_and_random_crop(encoded: tf.Tensor, seed: tf.Tensor, size: int,
                           scale: tuple[float, float]) -> tf.Tensor:
    """Random-resized crop taken on the encoded JPEG bytes (only the crop is decoded)."""
    shape = tf.image.extract_jpeg_shape(encoded)
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seed, min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=scale, max_attempts=10, use_image_if_no_bounding_boxes=True)
    window = tf.stack([begin[0], begin[1], crop_size[0], crop_size[1]])
    image = tf.io.decode_and_crop_jpeg(encoded, window, channels=3)
    image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.clip_by_value(image / 255.0, 0.0, 1.0)


def decode_and_center_crop(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """Evaluation view: central crop of 87.5% of the shorter side, resized to size."""
    shape = tf.image.extract_jpeg_shape(encoded)
    h, w = shape[0], shape[1]
    side = tf.cast(tf.cast(tf.minimum(h, w), tf.float32) * EVAL_CROP_FRACTION, tf.int32)
    side = tf.maximum(side, 1)
    window = tf.stack([(h - side) // 2, (w - side) // 2, side, side])
    image = tf.io.decode_and_crop_jpeg(encoded, window, channels=3)
    image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.clip_by_value(image / 255.0, 0.0, 1.0)


def random_patches(images: tf.Tensor, seed: tf.Tensor, size: int, stride: int, jitter: int,
                   aug_cfg) -> tf.Tensor:
    """CPC v2's patch views: [B, H, W, C] -> [B, G, G, size, size, C], each patch
    augmented on its own.

    Patch (i, j) is taken around the eval grid's patch at (i * stride, j * stride),
    shifted by up to ``jitter`` pixels each way (symmetric padding at the border),
    flipped with probability 1/2 and colour-jittered independently of its
    neighbours, so predictions cannot lean on low-level continuity.
    """
    s_shift_y, s_shift_x, s_photo = _split(seed, 3)
    channels = images.shape[-1]
    if jitter:
        images = tf.pad(images, [[0, 0], [jitter, jitter], [jitter, jitter], [0, 0]],
                        mode="SYMMETRIC")
    big = size + 2 * jitter
    grid = tf.image.extract_patches(images, sizes=[1, big, big, 1],
                                    strides=[1, stride, stride, 1], rates=[1, 1, 1, 1],
                                    padding="VALID")
    b, gh, gw = tf.shape(grid)[0], tf.shape(grid)[1], tf.shape(grid)[2]
    flat = tf.reshape(grid, [-1, big, big, channels])
    n = tf.shape(flat)[0]
    if jitter:
        dy = tf.random.stateless_uniform([n], s_shift_y, 0, 2 * jitter + 1, dtype=tf.int32)
        dx = tf.random.stateless_uniform([n], s_shift_x, 0, 2 * jitter + 1, dtype=tf.int32)
        span = tf.range(size)
        flat = tf.gather(flat, dy[:, None] + span[None], axis=1, batch_dims=1)
        flat = tf.gather(flat, dx[:, None] + span[None], axis=2, batch_dims=1)
    flat = photometric(flat, s_photo, aug_cfg)  # per patch: flip, jitter, grayscale
    return tf.reshape(flat, [b, gh, gw, size, size, channels])
