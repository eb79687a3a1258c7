"""Folders of JPEG / PNG files as a dataset family (``dataset.name = "image_folder"``).

``dataset.data_dir`` is any folder of ``.jpg`` / ``.jpeg`` / ``.png`` files (any
case, any nesting; other files are ignored), unlabeled. Instance ids are positions
in the sorted list of relative paths (``/``-separated), so re-reading an unchanged
folder gives the same ids. Adding or removing a file renumbers every file sorted
after it; the run fingerprint (``run.num_train`` and ``run.train_digest``, a sha256
of the sorted paths) then stops a resume on that folder instead of training a
memory bank whose rows moved.

Only the path list is held in memory: each file is read and decoded by tf.data as
it is needed. A JPEG is cropped on its encoded bytes, as ImageNet records are
(:func:`augment.decode_image_and_random_crop`); a PNG is decoded whole, grayscale
and palette images expanded to RGB, alpha dropped. Evaluation takes the 87.5%
center crop.

Files that are not images: listing reads the first 8 bytes of each file (a JPEG or
PNG signature; a thread pool, no decode), and a file with an image name and another
signature is named in an error, or left out and reported with
``dataset.skip_bad_records``. A file with a valid signature whose body does not
decode (with ``dataset.check_jpegs``, the default, a JPEG is decoded in full at 1/8
scale first, as ImageNet records are) fails in the pipeline; its element is dropped there and the gap it leaves in
the (ordered) stream names its path: an error by default, a warning and the
skipped-records count (``pipeline.skipped_records``) with ``skip_bad_records``.

kNN, probes and the projector are off unless ``dataset.eval_dir`` holds a labeled
ImageFolder tree: ``train/<class>/...`` (the kNN reference set and the probes'
training split) and ``val/<class>/...`` (the queries), labels by sorted class
folder names. The memory bank then covers the unlabeled training folder, so the
per-epoch kNN monitor recomputes the reference features instead of reading the bank.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import os
import sys

import numpy as np
import tensorflow as tf

from tf_contrastive.core.config import ConfigError
from tf_contrastive.data import augment, family, shards

EXTENSIONS = (".jpg", ".jpeg", ".png")
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVAL_SPLITS = {"train": "train", "test": "val", "validation": "val", "val": "val"}
_SHOWN = 5  # bad files named in a message


@dataclasses.dataclass(frozen=True)
class Listing:
    """The image files under ``root``: ``paths`` sorted (the id of a file is its
    position), the class of each (-1 when unlabeled) and the files whose first bytes
    are no JPEG or PNG signature (``bad``: id -> reason)."""

    root: str
    paths: tuple[str, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    bad: dict
    ignored: int  # files without an image extension
    dirs: tuple[tuple[str, int], ...]  # every folder walked and its mtime, for the cache

    def good_ids(self, limit: int = 0) -> np.ndarray:
        n = min(len(self.paths), limit) if limit else len(self.paths)
        return np.array([i for i in range(n) if i not in self.bad], np.int32)

    def named(self, ids) -> str:
        ids = list(ids)
        text = ", ".join(
            f"{os.path.join(self.root, self.paths[i])} ({self.bad[i]})" for i in ids[:_SHOWN]
        )
        return text + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else "")


def header_problem(path: str) -> str:
    """Empty for a file starting with a JPEG or PNG signature, else what is wrong with it."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        return f"cannot be read: {e.strerror}"
    if head.startswith(JPEG_MAGIC) or head == PNG_MAGIC:
        return ""
    return "empty file" if not head else f"not a JPEG or PNG: starts with {head[:4].hex()}"


def scan(root: str, key: str, labeled: bool = False, threads: int = 16) -> Listing:
    """Lists ``root`` (the value of config key ``key``) and checks each file's header.

    ``labeled``: ``root`` holds one folder per class; a file outside them is an error.
    """
    if not os.path.isdir(root):
        raise ConfigError(f"config.{key}: {root} is not a folder")
    paths, dirs, ignored = [], [], 0
    for here, subdirs, names in os.walk(root, followlinks=True):
        subdirs.sort()
        dirs.append((here, os.stat(here).st_mtime_ns))
        rel = os.path.relpath(here, root)
        for name in names:
            if name.lower().endswith(EXTENSIONS):
                paths.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
            else:
                ignored += 1
    paths.sort()
    if not paths:
        raise ConfigError(
            f"config.{key}: {root} holds no JPEG or PNG files "
            f"({'/'.join(EXTENSIONS)}, any case, in any subfolder)"
        )
    classes: tuple[str, ...] = ()
    labels = [-1] * len(paths)
    if labeled:
        loose = [p for p in paths if "/" not in p]
        if loose:
            raise ConfigError(
                f"config.{key}: {os.path.join(root, loose[0])} is not in a class "
                f"folder (a labeled split holds one folder per class)"
            )
        classes = tuple(sorted({p.split("/", 1)[0] for p in paths}))
        index = {c: i for i, c in enumerate(classes)}
        labels = [index[p.split("/", 1)[0]] for p in paths]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        problems = pool.map(header_problem, (os.path.join(root, p) for p in paths), chunksize=256)
        bad = {i: why for i, why in enumerate(problems) if why}
    return Listing(root, tuple(paths), tuple(labels), classes, bad, ignored, tuple(dirs))


def _unchanged(listing: Listing) -> bool:
    # A file added, removed or renamed changes its folder's mtime: a stat per folder, not
    # per file, tells whether the listing still holds.
    try:
        return all(os.stat(d).st_mtime_ns == t for d, t in listing.dirs)
    except OSError:
        return False


def read_named(
    ids: tf.Tensor,
    where: tf.Tensor,
    load,
    skip_bad: bool,
    count_skipped=None,
    parallel: bool = True,
) -> tf.data.Dataset:
    """``load(id)`` for each of ``ids`` in order, naming the files that fail.

    A failing ``load`` (a file that does not decode) drops its element
    (``ignore_errors``, which logs the decoder's reason); the ordered stream's
    positions then show a gap, and ``where`` (path of each id) names the files in it:
    an error, or with ``skip_bad`` a warning and ``count_skipped(n)``. An end marker
    catches failures at the end of the stream. ``load``'s outputs need static shapes.
    """
    n = tf.size(ids, out_type=tf.int64)
    ds = tf.data.Dataset.from_tensor_slices(ids).enumerate()
    ds = ds.map(
        lambda pos, i: (pos, load(i)),
        num_parallel_calls=family.AUTOTUNE if parallel else None,
        deterministic=True,
    )
    ds = ds.ignore_errors(log_warning=True)
    blank = tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), ds.element_spec[1])
    ds = ds.concatenate(tf.data.Dataset.from_tensors((n, blank)))
    ds = ds.scan(tf.constant(0, tf.int64), lambda expect, e: (e[0] + 1, (e[0], expect, e[1])))

    def report(pos, expect, element):
        lost = pos - expect
        names = tf.strings.reduce_join(
            tf.gather(where, tf.gather(ids, tf.range(expect, pos))), separator=", "
        )
        text = tf.strings.join(
            ["image_folder: ", tf.strings.as_string(lost), " file(s) do not decode: ", names]
        )
        if skip_bad:

            def warn():
                tf.print("skipping", text, output_stream=sys.stderr)
                if count_skipped is not None:
                    count_skipped(lost)
                return tf.constant(True)

            done = tf.cond(lost > 0, warn, lambda: tf.constant(True))
        else:
            done = tf.debugging.Assert(
                lost == 0,
                [text, "(set --config.dataset.skip_bad_records=True to skip them)"],
                summarize=1,
            )
        with tf.control_dependencies([done]):
            return pos < n, element

    ds = ds.map(report)
    return ds.filter(lambda keep, e: keep).map(lambda keep, e: e)


def checked_jpeg(encoded: tf.Tensor) -> tf.Tensor:
    """``encoded``, after a full decode at 1/8 scale when it is a JPEG (raises if it does
    not decode): a crop decodes only up to its last row and would go around damage below
    it (``dataset.check_jpegs``, as for ImageNet records)."""
    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), JPEG_MAGIC)
    ok = tf.cond(
        is_jpeg,
        lambda: tf.size(tf.io.decode_jpeg(encoded, channels=3, ratio=8)) >= 0,
        lambda: tf.constant(True),
    )
    # A data dependency (not a control one) keeps the check in the graph.
    return tf.cond(ok, lambda: encoded, lambda: tf.constant(b""))


class ImageFolderFamily(family.Family):
    """Unlabeled JPEG / PNG folders: random-resized crops to ``dataset.image_size``, kNN
    and probes on ``dataset.eval_dir`` when given. Listings are kept by the object while
    their folders are unchanged."""

    def __init__(self, skipped: shards.SkipCounter):
        self.skipped = skipped
        self._listings: dict = {}

    def listing(self, root: str, key: str, labeled: bool = False) -> Listing:
        """The listing of ``root``, re-scanned when a folder in it changed."""
        cache_key = (os.path.abspath(root), labeled)
        found = self._listings.get(cache_key)
        if found is None or not _unchanged(found):
            found = scan(root, key, labeled)
            self._listings[cache_key] = found
            what = (
                f"{len(found.classes)} classes (sorted class folder names)"
                if labeled
                else "unlabeled"
            )
            print(
                f"image_folder: {len(found.paths)} images under {root}, {what}; ids = "
                f"positions of the sorted relative paths"
                + (f"; {found.ignored} other files ignored" if found.ignored else "")
                + (
                    f"; {len(found.bad)} file(s) are not images (skipped with "
                    f"dataset.skip_bad_records): {found.named(sorted(found.bad))}"
                    if found.bad
                    else ""
                ),
                flush=True,
            )
        return found

    def check_config(self, cfg) -> None:
        ds = cfg.dataset
        if not ds.data_dir:
            raise ConfigError(
                "config.dataset.data_dir: image_folder needs a folder of JPEG or PNG files"
            )
        if ds.train_classes:
            raise ConfigError("config.dataset.train_classes: image_folder is unlabeled")
        section = cfg.get(cfg.method)
        if section is not None and section.get("warm_start"):
            raise ConfigError(
                f"config.{cfg.method}.warm_start: fills the bank from the labeled "
                "split, which for image_folder is dataset.eval_dir, not the "
                "training folder"
            )

    def _checked(self, root: str, key: str, skip_bad: bool, labeled: bool = False) -> Listing:
        found = self.listing(root, key, labeled)
        if found.bad and not skip_bad:
            raise ValueError(
                f"config.{key}: {len(found.bad)} file(s) are not images: "
                f"{found.named(sorted(found.bad))} (set "
                "--config.dataset.skip_bad_records=True to skip them)"
            )
        if len(found.bad) == len(found.paths):
            raise ConfigError(
                f"config.{key}: none of the {len(found.paths)} image files under "
                f"{root} is a JPEG or PNG: {found.named(sorted(found.bad))}"
            )
        return found

    def train_listing(self, ds_cfg) -> Listing:
        return self._checked(ds_cfg.data_dir, "dataset.data_dir", ds_cfg.skip_bad_records)

    def eval_listing(self, ds_cfg, split: str) -> Listing:
        if not ds_cfg.eval_dir:
            raise ConfigError(
                "config.dataset.eval_dir: image_folder evaluates only on a labeled "
                "ImageFolder tree (train/ and val/ class folders)"
            )
        sub = EVAL_SPLITS.get(split, "val")
        return self._checked(
            os.path.join(ds_cfg.eval_dir, sub),
            "dataset.eval_dir",
            ds_cfg.skip_bad_records,
            labeled=True,
        )

    def describe(self, ds_cfg) -> family.DatasetInfo:
        train = self.train_listing(ds_cfg)
        num_train = min(len(train.paths), ds_cfg.train_limit or len(train.paths))
        size = int(ds_cfg.image_size)
        n_eval, classes, eval_off = 0, 0, ""
        if not ds_cfg.eval_dir:
            eval_off = (
                f"{ds_cfg.data_dir} is unlabeled and config.dataset.eval_dir (a labeled "
                "train/ + val/ ImageFolder tree) is empty"
            )
        elif not ds_cfg.labeled:
            eval_off = "config.dataset.labeled=False"
        else:
            ref, val = self.eval_listing(ds_cfg, "train"), self.eval_listing(ds_cfg, "val")
            extra = sorted(set(val.classes) - set(ref.classes))
            if extra:
                raise ConfigError(
                    f"config.dataset.eval_dir: val/{extra[0]} is no class folder "
                    f"of {os.path.join(ds_cfg.eval_dir, 'train')}"
                )
            n_eval, classes = len(val.paths), len(ref.classes)
            if ds_cfg.eval_limit:
                n_eval = min(n_eval, int(ds_cfg.eval_limit))
        return family.DatasetInfo(
            num_train,
            n_eval,
            classes,
            (size, size, 3),
            augment.IMAGENET_MEAN,
            augment.IMAGENET_STD,
            labeled=not eval_off,
            eval_off=eval_off,
            knn_bank=False,
        )

    def run_facts(self, ds_cfg) -> dict:
        digest = hashlib.sha256("\n".join(self.train_listing(ds_cfg).paths).encode())
        return {"run.train_digest": "sha256:" + digest.hexdigest()}

    @staticmethod
    def _where(listing: Listing) -> tf.Tensor:
        return tf.constant([os.path.join(listing.root, p) for p in listing.paths])

    def training(self, cfg, view_spec, part):
        listing = self.train_listing(cfg.dataset)
        good = listing.good_ids(int(cfg.dataset.train_limit))
        where, good_t = self._where(listing), tf.constant(good)
        size = cfg.dataset.image_size
        scale = (cfg.augment.crop_scale_min, cfg.augment.crop_scale_max)
        n_views = view_spec.crops
        count = self.skipped.adder(cfg, True)
        check = cfg.dataset.check_jpegs

        def one_pass(epoch):
            epoch_seed = tf.cast(cfg.seed, tf.int64) * 1_000_003 + epoch
            noise = tf.random.stateless_uniform(
                [len(good)], tf.stack([tf.cast(cfg.seed, tf.int64), epoch])
            )
            # The ids an epoch uses (as the array families: each pipeline's share feeds
            # exactly its batches), dealt to the input pipelines.
            order = tf.gather(good_t, tf.argsort(noise))[: part.steps * part.global_batch]
            order = order[part.pipeline_id :: part.pipelines]

            def crop(i):
                encoded = tf.io.read_file(tf.gather(where, i))
                if check:
                    encoded = checked_jpeg(encoded)
                seeds = tf.unstack(
                    tf.random.experimental.stateless_split(
                        tf.stack([epoch_seed, tf.cast(i, tf.int64)]), n_views
                    )
                )
                crops = [
                    augment.decode_image_and_random_crop(encoded, s, size, scale) for s in seeds
                ]
                return {"crops": tf.stack(crops), "index": i, "label": tf.constant(-1)}

            ds = read_named(order, where, crop, cfg.dataset.skip_bad_records, count)
            return ds.batch(part.per_replica, drop_remainder=True)

        def views_of(b, seed):
            return tf.unstack(b["crops"], axis=1), seed, {"index": b["index"], "label": b["label"]}

        return family.Training(one_pass, crop=views_of)

    def eval_stream(self, cfg, split, part):
        listing = self.eval_listing(cfg.dataset, split)
        limit = cfg.dataset.eval_limit if EVAL_SPLITS.get(split, "val") == "val" else 0
        ids = tf.constant(listing.good_ids(int(limit)))[part.pipeline_id :: part.pipelines]
        where, labels = self._where(listing), tf.constant(listing.labels, tf.int32)
        size = cfg.dataset.image_size

        def view(i):
            encoded = tf.io.read_file(tf.gather(where, i))
            if cfg.dataset.check_jpegs:
                encoded = checked_jpeg(encoded)
            return {
                "image": augment.decode_image_and_center_crop(encoded, size),
                "label": tf.gather(labels, i),
                "index": i,
            }

        return read_named(ids, where, view, cfg.dataset.skip_bad_records).batch(part.per_replica)

    def jpeg_eval_view(self, ds_cfg, channels: int):
        """The 87.5% center crop, as for ImageNet."""
        size = int(ds_cfg.image_size)
        return lambda encoded: augment.decode_image_and_center_crop(encoded, size)
