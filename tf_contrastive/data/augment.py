"""Augmentations as pure, stateless TensorFlow ops.

Every random op takes an explicit ``seed`` (shape [2] int) and uses the
``tf.random.stateless_*`` family, so a batch's augmentation is a function of
(config seed, epoch, batch number): a resumed run sees the same views.

Photometric ops work on a whole batch at once (one op per batch instead of one
per image), which is what makes small-image training input-bound no longer, and
:func:`photometric` runs them as one XLA-compiled function (``augment.jit_compile``):
XLA fuses the dozen full passes over the batch (scale, mean, blend, clip, the HSV
round trip of the hue step, grayscale, flip) into a few.
"""

from __future__ import annotations

import functools

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


def jitter_factors(seed: tf.Tensor, batch, strength: float,
                   hue: float = -1.0) -> tuple[tf.Tensor, ...]:
    """Per-image (brightness, contrast, saturation, hue) draws of ColorJitter(s, s, s, h),
    each [batch, 1, 1, 1]: factors in [max(0, 1 - s), 1 + s], hue shift in [-h, h], with
    h = ``hue``, or min(s, 0.5) when ``hue`` < 0 (``augment.hue``'s default)."""
    s_b, s_c, s_s, s_h = _split(seed, 4)
    lo, hi = max(0.0, 1.0 - strength), 1.0 + strength
    hue = min(strength, 0.5) if hue < 0 else hue
    return (_per_image(s_b, batch, lo, hi), _per_image(s_c, batch, lo, hi),
            _per_image(s_s, batch, lo, hi), _per_image(s_h, batch, -hue, hue))


def apply_jitter(images: tf.Tensor, brightness, contrast, saturation, hue) -> tf.Tensor:
    """torchvision's adjust_brightness, _contrast, _saturation and _hue, in that order,
    each clipped to [0, 1] as torchvision's blends are; grayscale images get the first
    two only."""
    x = tf.clip_by_value(images * brightness, 0.0, 1.0)
    mean = tf.reduce_mean(grayscale(x)[..., :1], axis=[1, 2, 3], keepdims=True)
    x = tf.clip_by_value((x - mean) * contrast + mean, 0.0, 1.0)
    if images.shape[-1] != 3:
        return x
    gray = grayscale(x)
    x = tf.clip_by_value(gray + (x - gray) * saturation, 0.0, 1.0)
    # RGB -> HSV, h + delta mod 1, back (what TF's AdjustHue kernel does per image), on
    # the whole batch, so that XLA fuses it with the steps around it.
    hsv = tf.image.rgb_to_hsv(x)
    h = tf.math.floormod(hsv[..., :1] + hue, 1.0)
    return tf.clip_by_value(tf.image.hsv_to_rgb(tf.concat([h, hsv[..., 1:]], axis=-1)),
                            0.0, 1.0)


def color_jitter(images: tf.Tensor, seed: tf.Tensor, strength: float,
                 hue: float = -1.0) -> tf.Tensor:
    """Brightness, contrast, saturation and hue jitter of ``strength`` (torchvision's
    ColorJitter(s, s, s, h) semantics, h as :func:`jitter_factors`), applied in that
    fixed order."""
    if strength <= 0:
        return images
    return apply_jitter(images, *jitter_factors(seed, tf.shape(images)[0], strength, hue))


def blur_radius(side: int) -> int:
    """SimCLR's blur kernel for images of ``side`` pixels: 2r + 1 taps, r = (side // 10) // 2
    (the reference's kernel of 10% of the side, made odd); 0 below 20 pixels (no blur)."""
    return (int(side) // 10) // 2


def gaussian_blur(images: tf.Tensor, sigma: tf.Tensor, radius: int) -> tf.Tensor:
    """Separable Gaussian blur of [B, H, W, C] images, image b with ``sigma[b]``.

    Each image's 2r + 1 taps are exp(-x^2 / 2 sigma^2) normalised to sum 1, applied
    along the width then the height with zero padding: SimCLR's reference blurs with
    ``depthwise_conv2d(padding='SAME')``, so a border pixel loses the weight that falls
    outside. Shifted copies rather than a convolution, so that each image has its own
    kernel and XLA fuses the taps.
    """
    if radius < 1:
        return images
    taps = tf.range(-radius, radius + 1, dtype=images.dtype)
    sigma = tf.reshape(tf.cast(sigma, images.dtype), [-1, 1])
    weights = tf.exp(-tf.square(taps)[None] / (2.0 * tf.square(sigma)))
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)  # [B, 2r + 1]

    def along(x, axis):
        pad = [[0, 0]] * 4
        pad[axis] = [radius, radius]
        padded = tf.pad(x, pad)
        size = x.shape[axis] if x.shape[axis] is not None else tf.shape(x)[axis]
        out = 0.0
        for k in range(2 * radius + 1):
            window = (padded[:, k:k + size] if axis == 1 else padded[:, :, k:k + size])
            out += weights[:, k, None, None, None] * window
        return out

    return along(along(images, 2), 1)


def random_blur(images: tf.Tensor, seed: tf.Tensor, prob: float, sigma_min: float,
                sigma_max: float) -> tf.Tensor:
    """SimCLR's Gaussian blur: each image blurred with probability ``prob``, sigma drawn
    per image from U[sigma_min, sigma_max], kernel :func:`blur_radius` of its height."""
    radius = blur_radius(images.shape[1])
    if prob <= 0 or radius < 1:
        return images
    s_pick, s_sigma = _split(seed, 2)
    batch = tf.shape(images)[0]
    sigma = tf.random.stateless_uniform([batch], s_sigma, sigma_min, sigma_max)
    pick = tf.random.stateless_uniform([batch, 1, 1, 1], s_pick) < prob
    return tf.where(pick, gaussian_blur(images, sigma, radius), images)


ERASE_FOLD = 0x45524153  # "ERAS": random erasing's seed, folded out of the batch's
ERASE_ATTEMPTS = 10  # torchvision's RandomErasing tries 10 rectangles before it gives up


def erase_boxes(seed: tf.Tensor, batch, height: int, width: int, scale: tuple[float, float],
                ratio: tuple[float, float]) -> tuple[tf.Tensor, tf.Tensor]:
    """torchvision RandomErasing's rectangles for a batch of ``height`` x ``width`` images.

    Per image up to :data:`ERASE_ATTEMPTS` draws of an area in ``scale`` of the image and
    a log-uniform aspect in ``ratio``, sides h = round(sqrt(area * aspect)) and w =
    round(sqrt(area / aspect)); the first draw with h < height and w < width is placed
    uniformly. Returns ([batch, 4] int32 (y, x, h, w), [batch] bool: a draw fitted).
    """
    s_area, s_ratio, s_y, s_x = _split(seed, 4)
    shape = [batch, ERASE_ATTEMPTS]
    area = tf.random.stateless_uniform(shape, s_area, scale[0], scale[1]) * (height * width)
    aspect = tf.exp(tf.random.stateless_uniform(shape, s_ratio, tf.math.log(ratio[0]),
                                                tf.math.log(ratio[1])))
    h = tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32)
    w = tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32)
    fits = (h < height) & (w < width)
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    h = tf.gather(h, first, axis=1, batch_dims=1)
    w = tf.gather(w, first, axis=1, batch_dims=1)
    # torch.randint(0, height - h + 1): an integer in [0, height - h].
    y = tf.random.stateless_uniform([batch], s_y) * tf.cast(height - h + 1, tf.float32)
    x = tf.random.stateless_uniform([batch], s_x) * tf.cast(width - w + 1, tf.float32)
    y = tf.minimum(tf.cast(y, tf.int32), height - h)
    x = tf.minimum(tf.cast(x, tf.int32), width - w)
    return tf.stack([y, x, h, w], axis=1), tf.reduce_any(fits, axis=1)


def random_erase(images: tf.Tensor, seed: tf.Tensor, prob: float,
                 scale: tuple[float, float] = (0.02, 0.33),
                 ratio: tuple[float, float] = (0.3, 3.3), value: float = 0.0) -> tf.Tensor:
    """Random erasing (Zhong et al. 2020; torchvision's RandomErasing): with probability
    ``prob`` an image has one rectangle of :func:`erase_boxes` set to ``value`` in every
    channel (an image none of whose draws fits is left as it is)."""
    if prob <= 0:
        return images
    s_pick, s_box = _split(seed, 2)
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    boxes, fits = erase_boxes(s_box, batch, height, width, scale, ratio)
    pick = (tf.random.stateless_uniform([batch], s_pick) < prob) & fits
    y, x, h, w = (boxes[:, k, None] for k in range(4))
    rows = tf.range(height)[None]
    cols = tf.range(width)[None]
    in_rows = (rows >= y) & (rows < y + h) & pick[:, None]  # [B, H]
    in_cols = (cols >= x) & (cols < x + w)  # [B, W]
    inside = (in_rows[:, :, None] & in_cols[:, None, :])[..., None]
    return tf.where(inside, tf.cast(value, images.dtype), images)


def random_flip(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    flip = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed) < 0.5
    return tf.where(flip, tf.reverse(images, axis=[2]), images)


def random_grayscale(images: tf.Tensor, seed: tf.Tensor, prob: float) -> tf.Tensor:
    if prob <= 0 or images.shape[-1] == 1:
        return images
    pick = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed) < prob
    return tf.where(pick, grayscale(images), images)


def _photometric(images: tf.Tensor, seed: tf.Tensor, flip: bool, jitter: float,
                 gray_prob: float, hue: float = -1.0, jitter_prob: float = 1.0,
                 blur: tuple[float, float, float] = (0.0, 0.1, 2.0),
                 erase: tuple = (0.0, (0.02, 0.33), (0.3, 3.3), 0.0)) -> tf.Tensor:
    # The extra seeds only when their ops are on: with the defaults the draws (and the
    # views) stay those of the 3-way split every run before them was trained with.
    extra = jitter_prob < 1 or blur[0] > 0
    s_flip, s_jit, s_gray, *rest = _split(seed, 5 if extra else 3)
    x = random_flip(images, s_flip) if flip else images
    jittered = color_jitter(x, s_jit, jitter, hue)
    if jitter_prob < 1 and jitter > 0:
        pick = tf.random.stateless_uniform([tf.shape(x)[0], 1, 1, 1], rest[0]) < jitter_prob
        jittered = tf.where(pick, jittered, x)
    x = random_grayscale(jittered, s_gray, gray_prob)
    x = random_blur(x, rest[1], *blur) if extra else x
    if erase[0] > 0:
        # Its own seed folded out of the batch's, so that turning erasing on leaves every
        # other draw as it was: the views differ only by the erased rectangles.
        x = random_erase(x, tf.random.experimental.stateless_fold_in(seed, ERASE_FOLD), *erase)
    return x


@functools.lru_cache(maxsize=16)
def _compiled_photometric(*args):
    @tf.function(jit_compile=True)
    def run(images, seed):
        return _photometric(images, seed, *args)

    return run


def photometric(images: tf.Tensor, seed: tf.Tensor, aug_cfg) -> tf.Tensor:
    """Flip, colour jitter (with probability ``jitter_prob``), random grayscale and
    Gaussian blur (with probability ``blur_prob``) of a batch in [0, 1], in SimCLR's order,
    then random erasing (with probability ``erase_prob``, last as in torchvision's recipes).

    With ``aug_cfg.jit_compile`` (the default) as one XLA-compiled function. XLA
    draws other random numbers than TensorFlow's own kernels for the same seed
    (even naming the algorithm), so the setting is part of a run's fingerprint:
    a run and its resumes see the same views.
    """
    args = (bool(aug_cfg.flip), float(aug_cfg.color_jitter), float(aug_cfg.grayscale_prob),
            float(aug_cfg.get("hue", -1.0)), float(aug_cfg.get("jitter_prob", 1.0)),
            (float(aug_cfg.get("blur_prob", 0.0)), float(aug_cfg.get("blur_sigma_min", 0.1)),
             float(aug_cfg.get("blur_sigma_max", 2.0))),
            (float(aug_cfg.get("erase_prob", 0.0)),
             tuple(float(v) for v in aug_cfg.get("erase_scale", (0.02, 0.33))),
             tuple(float(v) for v in aug_cfg.get("erase_ratio", (0.3, 3.3))),
             float(aug_cfg.get("erase_value", 0.0))))
    if aug_cfg.get("jit_compile", False):
        return _compiled_photometric(*args)(images, seed)
    return _photometric(images, seed, *args)


JPEG_MAGIC = b"\xff\xd8\xff"


def _to_unit(image: tf.Tensor, size: int) -> tf.Tensor:
    """uint8 [h, w, C] -> float [size, size, C] in [0, 1] (antialiased bilinear).

    A crop no larger than ``size`` on either side is only enlarged, where antialiasing
    widens no filter: plain bilinear (half-pixel centres) gives the same pixels, up to
    float rounding, without ScaleAndTranslate's cost (the costliest op of the JPEG
    crop; figures in the README, "Speed on this machine").
    """
    shape = tf.shape(image)
    enlarge = tf.logical_and(shape[0] <= size, shape[1] <= size)
    image = tf.cond(enlarge,
                    lambda: tf.image.resize(image, [size, size], method="bilinear"),
                    lambda: tf.image.resize(image, [size, size], method="bilinear",
                                            antialias=True))
    return tf.clip_by_value(image / 255.0, 0.0, 1.0)


def random_crop_window(shape: tf.Tensor, seed: tf.Tensor, scale: tuple[float, float]) -> tf.Tensor:
    """[4] int32 (y, x, height, width): a random crop of ``scale`` of the area and aspect
    in [3/4, 4/3] of an image of ``shape`` [h, w, c]."""
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seed, min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=scale, max_attempts=10, use_image_if_no_bounding_boxes=True)
    return tf.stack([begin[0], begin[1], crop_size[0], crop_size[1]])


def center_crop_window(shape: tf.Tensor) -> tf.Tensor:
    """[4] int32 (y, x, height, width): the central square of 87.5% of the shorter side."""
    h, w = shape[0], shape[1]
    side = tf.cast(tf.cast(tf.minimum(h, w), tf.float32) * EVAL_CROP_FRACTION, tf.int32)
    side = tf.maximum(side, 1)
    return tf.stack([(h - side) // 2, (w - side) // 2, side, side])


def decode_and_random_crop(encoded: tf.Tensor, seed: tf.Tensor, size: int,
                           scale: tuple[float, float]) -> tf.Tensor:
    """Random-resized crop taken on the encoded JPEG bytes (only the crop is decoded)."""
    window = random_crop_window(tf.image.extract_jpeg_shape(encoded), seed, scale)
    return _to_unit(tf.io.decode_and_crop_jpeg(encoded, window, channels=3), size)


def decode_and_center_crop(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """Evaluation view: central crop of 87.5% of the shorter side, resized to size."""
    window = center_crop_window(tf.image.extract_jpeg_shape(encoded))
    return _to_unit(tf.io.decode_and_crop_jpeg(encoded, window, channels=3), size)


def _jpeg_or_png(encoded: tf.Tensor, jpeg_crop, window_of, size: int) -> tf.Tensor:
    """A JPEG through ``jpeg_crop`` (cropped on the encoded bytes); anything else decoded
    whole as a PNG (any colour type: grayscale and palette expanded to RGB, alpha dropped)
    and cut to ``window_of(shape)``. float [size, size, 3] in [0, 1]."""

    def png():
        image = tf.io.decode_png(encoded, channels=3)
        window = window_of(tf.shape(image))
        return _to_unit(tf.slice(image, [window[0], window[1], 0], [window[2], window[3], 3]),
                        size)

    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), JPEG_MAGIC)
    return tf.ensure_shape(tf.cond(is_jpeg, jpeg_crop, png), [size, size, 3])


def decode_image_and_random_crop(encoded: tf.Tensor, seed: tf.Tensor, size: int,
                                 scale: tuple[float, float]) -> tf.Tensor:
    """:func:`decode_and_random_crop` of a JPEG or a PNG (the same crop distribution)."""
    return _jpeg_or_png(encoded, lambda: decode_and_random_crop(encoded, seed, size, scale),
                        lambda shape: random_crop_window(shape, seed, scale), size)


def decode_image_and_center_crop(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """:func:`decode_and_center_crop` of a JPEG or a PNG."""
    return _jpeg_or_png(encoded, lambda: decode_and_center_crop(encoded, size),
                        center_crop_window, size)


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
