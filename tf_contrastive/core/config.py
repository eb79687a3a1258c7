"""Configuration schema shared by every method, and its validation.

Config files in ``configs/`` start from :func:`base_config` and override what
they need. :func:`validate` runs before any work so that a typo or an
impossible value fails with a message naming the key, not deep inside a graph.
:func:`config_path` lets the binaries take a shipped config by name
(``--config=instdisc_fashion_mnist``) as well as by file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Callable, Sequence

import ml_collections
from ml_collections.config_flags.config_flags import ConfigFileFlagParser

# No TensorFlow at import: the train binary reads its config (deterministic mode) before
# TensorFlow reads TF_ENABLE_ONEDNN_OPTS, which it does once, when it is imported.

# Facts of a run kept in its fingerprint (core/fingerprint.py) beside the config keys.
RUN_FACTS = ("run.num_train", "run.train_shards", "run.train_digest", "run.image_shape",
             "run.num_classes", "run.steps_per_epoch", "run.replicas")


class ConfigError(ValueError):
    """A configuration value is missing, mistyped or out of range."""


def base_config() -> ml_collections.ConfigDict:
    """Every key any method reads, with the defaults of a small CPU run."""
    c = ml_collections.ConfigDict()
    c.method = "instdisc"
    c.seed = 0
    # default | mirrored (all local GPUs/devices) | multi_worker (TF_CONFIG) | tpu
    c.strategy = "default"
    c.tpu_address = ""
    c.jit_compile = False
    # Deterministic kernels (tf.config.experimental.enable_op_determinism): a rerun, or a
    # run resumed from a checkpoint, ends bit-identical to the uninterrupted run. Slower.
    c.deterministic = False
    # "float32", "mixed_float16" (with loss scaling) or "mixed_bfloat16"; similarities,
    # losses and memory banks stay float32 either way.
    c.mixed_precision = "float32"

    c.dataset = ml_collections.ConfigDict()
    c.dataset.name = "fashion_mnist"
    # Directory of TFRecord shards (imagenet), of the IDX files (fashion_mnist; empty means
    # the Debian package location, then Keras's cache) or of images (image_folder).
    c.dataset.data_dir = ""
    c.dataset.image_size = 28
    # Multi-view records (dataset.name = "multiview"): view names in the records and
    # their channel counts.
    c.dataset.view_names = ("rgb", "depth")
    c.dataset.view_channels = (3, 1)
    # cifar100: "fine" (100 classes) or "coarse" (20 superclasses) labels.
    c.dataset.cifar100_labels = "fine"
    # stl10: the training stream's split, "train+unlabeled" (105,000 images, the CMC and
    # InvaSpread setting; unlabelled rows have label -1) or "train" (5,000 labelled).
    c.dataset.stl10_train = "train+unlabeled"
    # image_folder (data/image_folder.py): a labeled ImageFolder tree, train/ and val/ with
    # one folder per class, for kNN and probes; empty = they are off (data_dir is unlabeled).
    c.dataset.eval_dir = ""
    # Labels (data/labels.py). False: the records carry no labels; kNN, probes and the
    # projector are off. True: every record read needs a label in range, or the read
    # stops naming the record.
    c.dataset.labeled = True
    # Number of classes; 0 = from the data (the converter's classes.json, the speaker
    # list for audio, 1000 for official ImageNet files, the labels of in-memory data).
    # A declared value is checked against classes.json and every label read.
    c.dataset.num_classes = 0
    # The stored label of the first class: 0 or 1; -1 = the schema's (1 for ImageNet,
    # 0 for multi-view, audio and in-memory data) or what classes.json says.
    c.dataset.label_base = -1
    # Use only the first N training / evaluation examples (0 = all). For smoke runs.
    # Train only on these classes (in-memory datasets; empty = all). With the
    # rest held out, Recall@K on unseen categories is InvaSpread's protocol.
    c.dataset.train_classes = ()
    c.dataset.train_limit = 0
    c.dataset.eval_limit = 0
    # Skip undecodable records (logged with their file) instead of failing; for image_folder
    # the files that are not JPEG/PNG or do not decode (named, and counted as skipped records).
    c.dataset.skip_bad_records = False
    # ImageNet-schema records: decode every JPEG in full (at 1/8 scale) as it is read, so
    # one with an intact header and a corrupt body is named (or skipped) instead of being
    # cropped into a garbage image. Off saves that decode (cost in WORKSPACE.md); a JPEG
    # that then fails in the crop is still named, by a re-scan of the shards.
    c.dataset.check_jpegs = True
    c.dataset.shuffle_buffer = 10_000
    # Audio TFRecords (dataset.name = "audio", tools/build_audio_tfrecords.py): the
    # training crop in samples (20480 = 1.28 s at 16 kHz = 128 frames of 10 ms).
    c.dataset.audio_window = 20480
    # tf.data service dispatcher ("grpc://host:port", tools/data_service.py) that runs
    # the training input pipeline on separate CPU workers; empty = run it here.
    c.dataset.data_service = ""
    # tf.data threads for this pipeline (0 = TensorFlow's shared pool).
    c.dataset.threads = 0
    # Let parallel stages emit batches out of order when config.deterministic is off
    # (faster; a resumed run then no longer replays the same batch sequence).
    c.dataset.allow_reordering = False

    c.augment = ml_collections.ConfigDict()
    c.augment.crop_scale_min = 0.2
    c.augment.crop_scale_max = 1.0
    c.augment.flip = True
    c.augment.color_jitter = 0.4
    # The jitter's hue range; -1 = min(color_jitter, 0.5) (torchvision's ColorJitter(s, s, s,
    # min(s, 0.5)) of InstDisc/MoCo). SimCLR's colour strength s: color_jitter 0.8 s, hue 0.2 s.
    c.augment.hue = -1.0
    # Probability that an image is colour-jittered at all (SimCLR 0.8; 1 = every image).
    c.augment.jitter_prob = 1.0
    c.augment.grayscale_prob = 0.2
    # Gaussian blur after the colour ops (SimCLR ImageNet 0.5; 0 = off): sigma per image
    # from U[blur_sigma_min, blur_sigma_max], kernel 10% of the image side (none below 20 px).
    c.augment.blur_prob = 0.0
    c.augment.blur_sigma_min = 0.1
    c.augment.blur_sigma_max = 2.0
    # Random erasing last (torchvision's RandomErasing; 0 = off): with probability erase_prob
    # one rectangle of erase_scale of the area, aspect in erase_ratio, set to erase_value.
    c.augment.erase_prob = 0.0
    c.augment.erase_scale = (0.02, 0.33)
    c.augment.erase_ratio = (0.3, 3.3)
    c.augment.erase_value = 0.0
    # Run flip + colour jitter + grayscale (+ blur) as one XLA-compiled function per batch: on the
    # ImageNet TFRecord pipeline 1.6x the images/s of the same ops run one by one (README).
    c.augment.jit_compile = True

    c.model = ml_collections.ConfigDict()
    c.model.backbone = "resnet18_cifar"
    c.model.width = 64
    c.model.embedding_dim = 128
    # "linear" (InstDisc, InvaSpread, CMC, MoCo v1) or "mlp": Dense(head_hidden) -> ReLU
    # -> Dense(embedding_dim), the projection head of SimCLR and MoCo v2.
    c.model.head = "linear"
    c.model.head_hidden = 0  # 0 = the backbone's feature width (2048 for ResNet-50)
    # Batch-norm statistics over the global batch (all replicas) instead of per replica.
    c.model.sync_bn = False

    c.instdisc = ml_collections.ConfigDict()
    c.instdisc.loss = "nce"  # "nce" or "softmax"
    c.instdisc.num_negatives = 4096
    c.instdisc.temperature = 0.07
    c.instdisc.momentum = 0.5
    c.instdisc.shared_negatives = False
    # 0 keeps Z frozen after the first batch (the paper); >0 is an EMA factor.
    c.instdisc.z_momentum = 0.0
    c.instdisc.warm_start = False

    c.invaspread = ml_collections.ConfigDict()
    c.invaspread.temperature = 0.1

    c.moco = ml_collections.ConfigDict()
    # MoCo (He et al. 2020): K keys in the queue, the key encoder's momentum m, tau.
    c.moco.queue_size = 65536
    c.moco.momentum = 0.999
    c.moco.temperature = 0.07
    # Shuffled BN: with N > 1 replicas the key batch is permuted across replicas before
    # the key encoder (no-op on one replica).
    c.moco.shuffle_bn = True

    c.simclr = ml_collections.ConfigDict()
    # NT-Xent's tau: 0.1 the reference's ImageNet command, 0.5 its CIFAR-10 one.
    c.simclr.temperature = 0.1

    c.cmc = ml_collections.ConfigDict()
    # lab / ycbcr for colour images; intensity_gradient for grayscale ones.
    c.cmc.views = "lab"
    c.cmc.loss = "nce"  # "nce" or "softmax"
    c.cmc.num_negatives = 16384
    c.cmc.temperature = 0.07
    c.cmc.momentum = 0.5
    c.cmc.objective = "core"  # "core" or "full" (the same for two views)
    c.cmc.z_momentum = 0.0
    # One set of K noise ids for the whole batch (as instdisc.shared_negatives); the
    # paper draws K per sample.
    c.cmc.shared_negatives = False
    c.cmc.warm_start = False
    # True: both views are split from one crop (the paper). False: each view from its
    # own random crop, so one view is no fixed function of the other (matters for
    # intensity / gradient, where the gradient is computed from the intensity).
    c.cmc.same_crop = True
    # True: each crop gets the photometric augmentation of config.augment (flip, colour
    # jitter, random grayscale) before it is split into views, as InstDisc's input does.
    # False: flip only (the paper's Lab recipe), so the views keep the crop's pixels.
    # Channel splits only; multi-view records are cropped and flipped, never jittered.
    c.cmc.jitter = False

    c.cpc = ml_collections.ConfigDict()
    # Audio CPC (van den Oord et al. 2018): g_enc = strided 1-D convs, g_ar = GRU.
    c.cpc.enc_channels = 512
    c.cpc.enc_strides = (5, 4, 2, 2, 2)
    c.cpc.enc_kernels = (10, 8, 4, 4, 4)
    c.cpc.context_units = 256
    c.cpc.prediction_steps = 12
    # Negatives for each prediction: "all" (every other frame of every sequence in the
    # batch), "same_sequence" (other frames of its own sequence) or "other_sequences"
    # (frames of the other sequences). The positive is never also a negative.
    c.cpc.negatives = "all"
    # Candidates from the whole global batch (every replica), so N replicas train like
    # one device; False = from this replica's batch only (the paper: 8 windows per GPU).
    c.cpc.global_negatives = True

    c.cpc_image = ml_collections.ConfigDict()
    # CPC v2 (Henaff et al. 2019): a crop is cut into a grid of overlapping patches.
    c.cpc_image.patch_size = 8
    c.cpc_image.patch_stride = 4
    # Extra pixels around each training patch for a random per-patch shift (jitter).
    c.cpc_image.patch_jitter = 2
    c.cpc_image.feature_dim = 128
    c.cpc_image.context_layers = 2
    c.cpc_image.prediction_steps = 2
    # 1 = predict rows below only; 4 = also above, left and right (CPC v2's option).
    c.cpc_image.directions = 1
    # As cpc.global_negatives, for the patch grids.
    c.cpc_image.global_negatives = True

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "sgd"
    c.optimizer.learning_rate = 0.03
    # The learning rate is for this global batch and scaled linearly with the
    # actual one (0 = use learning_rate as given, whatever the batch).
    c.optimizer.reference_batch = 256
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 1e-4
    # LARS's trust coefficient eta (optimizer.name = "lars"; SimCLR's 0.001).
    c.optimizer.lars_eta = 0.001
    c.optimizer.schedule = "cosine"
    c.optimizer.warmup_epochs = 0
    c.optimizer.decay_epochs = (120, 160)
    c.optimizer.decay_rate = 0.1

    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 256
    c.train.epochs = 200
    # 0 = one pass over the training set (drop remainder).
    c.train.steps_per_epoch = 0
    c.train.log_every_steps = 50
    c.train.checkpoints_to_keep = 3
    # Also back up every N optimizer steps (0 = only at epoch ends), so a run killed
    # mid-epoch continues from the last backup instead of repeating the epoch.
    c.train.backup_every_steps = 0
    c.train.export = True
    # Keys (e.g. "train.epochs", "run.steps_per_epoch") whose change a resume may accept;
    # any other difference from the run's fingerprint stops the resume (core/fingerprint.py).
    c.train.allow_changes = ()

    c.probe = ml_collections.ConfigDict()
    # Online linear probe (methods/online_probe.py): a linear classifier on the pooled
    # backbone features, their gradient stopped, trained beside the method on the training
    # batches' labels with its own SGD (the method's state never sees it); its loss and
    # top-1 are trackers, its top-1 on the evaluation split is scored with the kNN monitor.
    c.probe.online = False
    c.probe.online_lr = 0.1  # constant
    c.probe.online_momentum = 0.9
    c.probe.online_weight_decay = 0.0

    c.eval = ml_collections.ConfigDict()
    c.eval.knn_k = 200
    c.eval.knn_sigma = 0.07
    c.eval.every_epochs = 1
    c.eval.batch_size = 512
    # Also score the untrained network (the random-init baseline) before training.
    c.eval.knn_at_init = True
    # Test examples written to the TensorBoard projector at the end (0 = none).
    c.eval.projector_examples = 1000
    c.lock()  # New keys (typos) raise; existing keys can still be overridden.
    return c


def sibling_config(this_file: str, name: str) -> ml_collections.ConfigDict:
    """``get_config()`` of the config file ``name`` next to ``this_file``.

    Lets a config file start from another (``configs/default.py`` is the
    Fashion-MNIST recipe cut short) without sys.path tricks.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(this_file)), name)
    spec = importlib.util.spec_from_file_location(os.path.splitext(name)[0], path)
    if spec is None or not os.path.exists(path):
        raise FileNotFoundError(f"{this_file}: no config file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def config_dir() -> str:
    """The folder of the shipped config files.

    In an installed wheel it is ``tf_contrastive/configs`` (pyproject.toml maps the
    checkout's ``configs/`` to that package); in a checkout, ``configs/`` beside the
    package, the one source of truth the README's ``--config=configs/x.py`` uses.
    """
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = os.path.join(package, "configs")
    if os.path.isfile(os.path.join(installed, "default.py")):
        return installed
    return os.path.join(os.path.dirname(package), "configs")


def default_config_path() -> str:
    """The no-flags job's config (``configs/default.py``; shipped in the wheel too)."""
    return os.path.join(config_dir(), "default.py")


def config_names() -> list[str]:
    """Names of the shipped configs (``default``, ``instdisc_fashion_mnist``, ...)."""
    directory = config_dir()
    if not os.path.isdir(directory):
        return []
    return sorted(n[:-3] for n in os.listdir(directory)
                  if n.endswith(".py") and not n.startswith("_"))


def config_path(value: str) -> str:
    """A ``--config`` value as a config file path.

    A path (it has a ``/``, ends in ``.py`` or exists) is returned unchanged, so
    ``--config=configs/x.py`` keeps meaning that file; a bare name is the shipped
    config of that name. ml_collections' ``FILE:ARG`` suffix is kept. An unknown
    name raises ValueError listing the shipped names.
    """
    name, sep, arg = value.partition(":")
    if not name or "/" in name or os.sep in name or name.endswith(".py") or os.path.exists(name):
        return value
    path = os.path.join(config_dir(), name + ".py")
    if not os.path.isfile(path):
        raise ValueError(f"no config named {name!r} (a file path needs a '/' or '.py'); "
                         f"shipped configs: {', '.join(config_names()) or 'none found'}")
    return path + sep + arg


class ConfigNameParser(ConfigFileFlagParser):
    """ml_collections' config-file parser, also taking a shipped config's name.

    The binaries set it as their ``config`` flag's parser (see train.py).
    """

    def parse(self, path):
        return super().parse(config_path(path))


def _fail(key: str, msg: str) -> None:
    raise ConfigError(f"config.{key}: {msg}")


def _flat_keys(d: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in d.items():
        keys += (_flat_keys(value, f"{prefix}{key}.") if isinstance(value, dict)
                 else [f"{prefix}{key}"])
    return keys


def validate(cfg: ml_collections.ConfigDict, num_instances: int | None = None,
             num_replicas: int = 1,
             rules: Sequence[Callable[[ml_collections.ConfigDict], None]] = ()) -> None:
    """Checks the schema's own ranges and cross-field constraints (every section but the
    methods'); raises ConfigError naming the key.

    ``rules``: the owners' checks of their own keys, each ``rule(cfg)`` raising
    ConfigError, e.g. ``tf_contrastive.data.pipeline.check_config`` (the dataset name
    among the known families and the configured family's rules); core knows no dataset.
    The whole check of a run, with the method names, backbones and every method's
    section rules (owned above ``core``), is ``tf_contrastive.methods.validate``,
    which calls this.
    """
    from tf_contrastive.core.distribute import STRATEGIES
    from tf_contrastive.core.schedules import OPTIMIZERS, SCHEDULES

    for rule in rules:
        rule(cfg)
    if cfg.optimizer.schedule not in SCHEDULES:
        _fail("optimizer.schedule", f"{cfg.optimizer.schedule!r} is not one of {SCHEDULES}")
    if cfg.mixed_precision not in ("float32", "mixed_float16", "mixed_bfloat16"):
        _fail("mixed_precision", f"{cfg.mixed_precision!r} is not one of "
              "('float32', 'mixed_float16', 'mixed_bfloat16')")
    if cfg.strategy not in STRATEGIES:
        _fail("strategy", f"{cfg.strategy!r} is not one of {STRATEGIES}")
    if cfg.dataset.label_base not in (-1, 0, 1):
        _fail("dataset.label_base", f"must be 0 or 1 (or -1: the schema's), got "
              f"{cfg.dataset.label_base}")
    if cfg.dataset.num_classes < 0:
        _fail("dataset.num_classes", f"must be >= 0 (0 = from the data), got "
              f"{cfg.dataset.num_classes}")
    service = cfg.dataset.data_service
    if service and not re.fullmatch(r"(grpc://)?[^:/\s]+:\d+", service):
        _fail("dataset.data_service", f"{service!r} is not a dispatcher address "
              "grpc://host:port")
    if cfg.dataset.threads < 0:
        _fail("dataset.threads", f"must be >= 0 (0 = shared pool), got {cfg.dataset.threads}")
    if cfg.dataset.image_size < 8:
        _fail("dataset.image_size", f"must be >= 8, got {cfg.dataset.image_size}")
    if not 0 < cfg.augment.crop_scale_min <= cfg.augment.crop_scale_max <= 1:
        _fail("augment.crop_scale_min",
              "need 0 < crop_scale_min <= crop_scale_max <= 1, got "
              f"{cfg.augment.crop_scale_min}, {cfg.augment.crop_scale_max}")
    if not 0 <= cfg.augment.grayscale_prob <= 1:
        _fail("augment.grayscale_prob", f"must be in [0, 1], got {cfg.augment.grayscale_prob}")
    if cfg.augment.color_jitter < 0:
        _fail("augment.color_jitter", f"must be >= 0, got {cfg.augment.color_jitter}")
    if cfg.augment.hue != -1 and not 0 <= cfg.augment.hue <= 0.5:
        _fail("augment.hue", f"must be in [0, 0.5] (or -1: min(color_jitter, 0.5)), got "
              f"{cfg.augment.hue}")
    for key in ("jitter_prob", "blur_prob", "erase_prob", "erase_value"):
        if not 0 <= cfg.augment[key] <= 1:
            _fail(f"augment.{key}", f"must be in [0, 1], got {cfg.augment[key]}")
    if not 0 < cfg.augment.blur_sigma_min <= cfg.augment.blur_sigma_max:
        _fail("augment.blur_sigma_min", "need 0 < blur_sigma_min <= blur_sigma_max, got "
              f"{cfg.augment.blur_sigma_min}, {cfg.augment.blur_sigma_max}")
    for key, top in (("erase_scale", 1.0), ("erase_ratio", float("inf"))):
        pair = tuple(cfg.augment[key])
        if len(pair) != 2 or not 0 < pair[0] <= pair[1] <= top:
            _fail(f"augment.{key}", "need (low, high) with 0 < low <= high"
                  f"{' <= 1' if top == 1 else ''}, got {pair}")
    if cfg.model.width < 1:
        _fail("model.width", f"must be >= 1, got {cfg.model.width}")
    if cfg.model.embedding_dim < 1:
        _fail("model.embedding_dim", f"must be >= 1, got {cfg.model.embedding_dim}")
    if cfg.model.head_hidden < 0:
        _fail("model.head_hidden", f"must be >= 0 (0 = the backbone's width), got "
              f"{cfg.model.head_hidden}")
    if cfg.train.batch_size < 1:
        _fail("train.batch_size", f"must be >= 1, got {cfg.train.batch_size}")
    if cfg.train.batch_size % num_replicas:
        _fail("train.batch_size",
              f"{cfg.train.batch_size} is not divisible by the {num_replicas} replicas")
    if cfg.train.epochs < 1:
        _fail("train.epochs", f"must be >= 1, got {cfg.train.epochs}")
    if cfg.train.backup_every_steps < 0:
        _fail("train.backup_every_steps", f"must be >= 0, got {cfg.train.backup_every_steps}")
    if cfg.train.steps_per_epoch < 0:
        _fail("train.steps_per_epoch", f"must be >= 0, got {cfg.train.steps_per_epoch}")
    if cfg.optimizer.name not in OPTIMIZERS:
        _fail("optimizer.name", f"{cfg.optimizer.name!r} is not one of {OPTIMIZERS}")
    if not 0 <= cfg.optimizer.momentum < 1:
        _fail("optimizer.momentum", f"must be in [0, 1), got {cfg.optimizer.momentum}")
    if cfg.optimizer.learning_rate <= 0:
        _fail("optimizer.learning_rate", f"must be > 0, got {cfg.optimizer.learning_rate}")
    if cfg.optimizer.weight_decay < 0:
        _fail("optimizer.weight_decay", f"must be >= 0, got {cfg.optimizer.weight_decay}")
    if cfg.optimizer.lars_eta <= 0:
        _fail("optimizer.lars_eta", f"must be > 0, got {cfg.optimizer.lars_eta}")
    if cfg.probe.online_lr <= 0:
        _fail("probe.online_lr", f"must be > 0, got {cfg.probe.online_lr}")
    if not 0 <= cfg.probe.online_momentum < 1:
        _fail("probe.online_momentum", f"must be in [0, 1), got {cfg.probe.online_momentum}")
    if cfg.probe.online_weight_decay < 0:
        _fail("probe.online_weight_decay",
              f"must be >= 0, got {cfg.probe.online_weight_decay}")
    if cfg.eval.batch_size < 1:
        _fail("eval.batch_size", f"must be >= 1, got {cfg.eval.batch_size}")
    if cfg.eval.batch_size % num_replicas:
        _fail("eval.batch_size",
              f"{cfg.eval.batch_size} is not divisible by the {num_replicas} replicas")
    known = set(_flat_keys(base_config().to_dict())) | set(RUN_FACTS)
    for key in cfg.train.allow_changes:
        if not isinstance(key, str) or key not in known:
            _fail("train.allow_changes", f"{key!r} is not a config key (e.g. 'train.epochs') "
                  f"nor one of the run facts {RUN_FACTS}")
    if cfg.eval.knn_k < 1:
        _fail("eval.knn_k", f"must be >= 1, got {cfg.eval.knn_k}")
    if cfg.eval.knn_sigma <= 0:
        _fail("eval.knn_sigma", f"must be > 0, got {cfg.eval.knn_sigma}")
    if num_instances is not None:
        if cfg.train.steps_per_epoch * cfg.train.batch_size > num_instances:
            # An epoch must not run into the next pass over the data: a resumed run
            # restarts the data at the epoch it resumes, which would then differ.
            _fail("train.steps_per_epoch",
                  f"{cfg.train.steps_per_epoch} steps of {cfg.train.batch_size} exceed one pass "
                  f"over the {num_instances} training examples; use at most "
                  f"{num_instances // cfg.train.batch_size} (or 0 for one pass)")
        if num_instances < cfg.train.batch_size:
            _fail("train.batch_size",
                  f"{cfg.train.batch_size} exceeds the {num_instances} training examples")


def _merge(dst: ml_collections.ConfigDict, src: dict, prefix: str, origin: str) -> None:
    for key, value in src.items():
        if key not in dst:
            raise ConfigError(f"{origin}: unknown key config.{prefix}{key}")
        if isinstance(dst[key], ml_collections.ConfigDict):
            _merge(dst[key], value, f"{prefix}{key}.", origin)
        elif isinstance(dst[key], tuple):
            dst[key] = tuple(value)
        else:
            dst[key] = value


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The resolved config a training run wrote to ``<workdir>/config.json``."""
    import tensorflow as tf  # gfile: the run dir may be on gs:// or hdfs://

    path = os.path.join(workdir, "config.json")
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"--workdir {workdir}: no config.json (not a training run dir)")
    with tf.io.gfile.GFile(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from e
    cfg = base_config()
    _merge(cfg, data, "", path)
    return cfg
