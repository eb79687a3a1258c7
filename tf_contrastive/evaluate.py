"""Evaluation binary: kNN, linear probes and Recall@K on a checkpoint or a SavedModel.

    python -m tf_contrastive.evaluate --workdir=runs/default
    python -m tf_contrastive.evaluate --saved_model=runs/default/export/1795836925 \
        --workdir=runs/default --protocols=knn,recall
    python -m tf_contrastive.evaluate --workdir=runs/default --untrained   # baseline

``--untrained`` scores the run's network at its (seeded) random initialisation:
the baseline every figure should be read against. ``phone`` (CPC audio with
phone alignments) trains a linear classifier on the frame-level contexts c_t.

The dataset comes from the run's ``config.json`` (``--workdir``) or from
``--config``. Results are printed as a table and written as JSON to
``--output`` (default ``<workdir>/eval_results.json``).
"""

from __future__ import annotations

from tf_contrastive.core import runtime  # first: TensorFlow reads oneDNN/threads at import

# isort: split

import json
import os

import numpy as np
import tensorflow as tf
from absl import app, flags
from ml_collections import config_flags

from tf_contrastive import trainer
from tf_contrastive.core.config import ConfigNameParser, load_run_config
from tf_contrastive.data import pipeline
from tf_contrastive.eval.features import extract_features
from tf_contrastive.eval.linear_probe import keras_probe
from tf_contrastive.eval.protocols import evaluate_features, format_table, recall_classes
from tf_contrastive.models.encoder import backbone_of

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file or shipped config name (if no --workdir).")
flags.FLAGS["config"].parser = ConfigNameParser("config", lock_config=True)
flags.DEFINE_string("workdir", None, "Training run directory (config + checkpoints).")
flags.DEFINE_string("checkpoint", None, "A checkpoint prefix (default: the run's latest).")
flags.DEFINE_string("saved_model", None, "Evaluate this SavedModel export instead.")
flags.DEFINE_list("protocols", ["knn", "linear", "svm", "recall"], "Protocols to run.")
flags.DEFINE_integer("knn_k", None, "k (default: the config's eval.knn_k).")
flags.DEFINE_float("knn_sigma", None, "sigma (default: the config's eval.knn_sigma).")
flags.DEFINE_integer("probe_epochs", 30, "Epochs of the Keras linear probe.")
flags.DEFINE_float("probe_lr", 0.1, "Learning rate of the Keras linear probe.")
flags.DEFINE_list("recall_classes", None, "Unseen classes for Recall@K (default: held out).")
flags.DEFINE_string("output", None, "Results JSON path.")
flags.DEFINE_bool("untrained", False, "Evaluate the config's network at random initialisation.")
FLAGS = flags.FLAGS


def _saved_model_fns(path: str):
    if not tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"--saved_model {path}: no saved_model.pb there")
    loaded = tf.saved_model.load(path)
    if "embed_waveforms" in loaded.signatures:  # CPC audio: float waveforms in
        wave_sig = loaded.signatures["embed_waveforms"]
        return ((lambda x: wave_sig(waveform=x)["embeddings"]),
                (lambda x: wave_sig(waveform=x)["features"]), loaded)
    if "embed_images" not in loaded.signatures:
        raise ValueError(f"--saved_model {path}: not a tf_contrastive encoder export (no "
                         f"embed_images signature; has {sorted(loaded.signatures)})")
    sig = loaded.signatures["embed_images"]

    def call(key):
        def fn(x):
            uint8 = tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)
            return sig(images=uint8)[key]
        return fn

    outputs = sig.structured_outputs
    return call("embeddings"), (call("features") if "features" in outputs else None), loaded


def collect(embed, featurize, dataset_fn, key: str = "image") -> dict:
    """{'embeddings', 'features', 'labels'} over one pass of ``dataset_fn()``."""
    emb, labels, _ = extract_features(embed, dataset_fn(), key=key)
    out = {"embeddings": emb, "labels": labels}
    if featurize is not None:
        out["features"], _, _ = extract_features(featurize, dataset_fn(), key=key)
    return out


def phone_probe(model, train_fn, test_fn, epochs: int, lr: float) -> dict:
    """Frame-level linear phone classification from the method's ``frame_features``
    (CPC audio: c_t); frames labelled -1 are left out."""

    context = tf.function(model.frame_features, reduce_retracing=True)

    def frames(dataset_fn):
        xs, ys = [], []
        for batch in dataset_fn():
            c = context(batch["waveform"]).numpy()
            y = batch["phones"].numpy()[:, : c.shape[1]]
            keep = y >= 0
            xs.append(c[:, : y.shape[1]][keep])
            ys.append(y[keep])
        x, y = np.concatenate(xs), np.concatenate(ys)
        if not len(y):
            raise ValueError("--protocols=phone: the records have no phone labels "
                             "(convert with --alignment)")
        return x, y

    train_x, train_y = frames(train_fn)
    test_x, test_y = frames(test_fn)
    num_phones = int(max(train_y.max(), test_y.max())) + 1
    scores = keras_probe(train_x, train_y, test_x, test_y, num_phones, epochs=epochs,
                         learning_rate=lr)
    return {f"phone_{k}": v for k, v in scores.items()}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    print(runtime.apply().line(), flush=True)
    if FLAGS.saved_model:
        if FLAGS.workdir:
            cfg = load_run_config(FLAGS.workdir)
        elif _CONFIG.value is not None:
            cfg = _CONFIG.value
        else:
            raise app.UsageError("--saved_model needs --workdir or --config for the dataset")
        embed, featurize, _keep = _saved_model_fns(FLAGS.saved_model)
    elif FLAGS.untrained:
        cfg = load_run_config(FLAGS.workdir) if FLAGS.workdir else _CONFIG.value
        if cfg is None:
            raise app.UsageError("--untrained needs --workdir or --config")
        model = trainer.untrained_model(cfg)
        embed, featurize = model.encoder, backbone_of(model.encoder)
    elif FLAGS.workdir:
        cfg, model, _ = trainer.restore_run(FLAGS.workdir, FLAGS.checkpoint)
        embed, featurize = model.encoder, backbone_of(model.encoder)
    else:
        raise app.UsageError("give --workdir (checkpoint) or --saved_model")
    info = pipeline.describe(cfg.dataset)

    def data(split):
        return lambda: pipeline.build_dataset(cfg, split=split, training=False)

    key = pipeline.input_key(cfg)
    protocols = [p for p in FLAGS.protocols if p != "phone"]
    if protocols and info.eval_off:
        raise app.UsageError(f"--protocols={','.join(protocols)}: no evaluation possible "
                             f"({info.eval_off})")
    if "phone" in FLAGS.protocols and (FLAGS.saved_model or model.frame_features is None):
        raise app.UsageError("--protocols=phone needs a --workdir of a method with frame "
                             "features (CPC audio)")
    key = pipeline.input_key(cfg)
    train = collect(embed, featurize, data("train"), key)
    test = collect(embed, featurize, data("test"), key)
    unseen = (tuple(int(c) for c in FLAGS.recall_classes) if FLAGS.recall_classes
              else recall_classes(cfg.dataset.train_classes, info.num_classes))
    if not (FLAGS.workdir or FLAGS.saved_model or FLAGS.output):
        raise app.UsageError("--untrained with --config needs --output (no run dir to write to)")
    out_dir = (FLAGS.workdir or (os.path.dirname(FLAGS.saved_model) if FLAGS.saved_model
                                 else os.path.dirname(os.path.abspath(FLAGS.output))))
    results = evaluate_features(
        train, test, info.num_classes, protocols,
        knn_k=FLAGS.knn_k or cfg.eval.knn_k, knn_sigma=FLAGS.knn_sigma or cfg.eval.knn_sigma,
        probe_epochs=FLAGS.probe_epochs, probe_lr=FLAGS.probe_lr, unseen=unseen,
        logdir=os.path.join(out_dir, "tensorboard", "linear_probe"))
    if "phone" in FLAGS.protocols:
        results.update(phone_probe(model, data("train"), data("test"), FLAGS.probe_epochs,
                                   FLAGS.probe_lr))
    results["source"] = ("untrained" if FLAGS.untrained else
                         FLAGS.saved_model or FLAGS.checkpoint or FLAGS.workdir)
    results["train_examples"], results["test_examples"] = len(train["labels"]), len(
        test["labels"])
    print(format_table(results))
    output = FLAGS.output or os.path.join(out_dir, "eval_results.json")
    with tf.io.gfile.GFile(output, "w") as f:
        json.dump(results, f, indent=2, default=lambda o: o.tolist()
                  if isinstance(o, np.ndarray) else str(o))
    print(f"results written to {output}")


if __name__ == "__main__":
    app.run(main)
