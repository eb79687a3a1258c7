"""The training loop behind ``python -m tf_contrastive.train``, callable without flags.

``run(cfg, workdir)`` builds the strategy, data, method and callbacks, restores
the newest checkpoint in ``workdir`` if any, trains with ``fit``, evaluates and
exports. ``build_model`` is shared with the benchmarks and tests.
"""

from __future__ import annotations

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tf_contrastive.core import checkpoint as ckpt_lib
from tf_contrastive.core import distribute, runtime
from tf_contrastive.core import fingerprint as fp_lib
from tf_contrastive.core.config import default_config_path, load_run_config
from tf_contrastive.core.export import save_keras
from tf_contrastive.core.schedules import build_optimizer
from tf_contrastive.core.summaries import RunMonitor, write_projector
from tf_contrastive.data import pipeline
from tf_contrastive.eval.callbacks import KNNMonitor
from tf_contrastive.methods import get_method, other_sections, validate

# The no-flags job; shipped in the wheel too (core.config.config_dir).
DEFAULT_CONFIG = default_config_path()

def _fill_bank(strategy, model, cfg) -> None:
    """Warm start: every bank row set to the initial network's feature of its image."""
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: pipeline.build_dataset(cfg, ctx, split="train", training=False))

    # Traced for the dataset's spec (batch size unknown), not each batch's shapes: a last step
    # that leaves a replica with no rows would otherwise trace a static batch of 0, which
    # Keras's Add mistakes for a bias and fails on.
    @tf.function(input_signature=[dataset.element_spec])
    def step(batch):
        return strategy.run(model.fill_bank_step, args=(batch,))

    for batch in dataset:
        step(batch)


def _probe_labels(cfg, info: pipeline.DatasetInfo) -> bool:
    """Whether the training batches carry labels an online probe can learn."""
    return bool(cfg.dataset.labeled) and info.num_classes > 0


def build_model(cfg, strategy: tf.distribute.Strategy, info: pipeline.DatasetInfo,
                steps_per_epoch: int):
    """The method's model and its optimizer, with every variable created, in scope."""
    spec = get_method(cfg.method)
    keras.mixed_precision.set_global_policy(cfg.mixed_precision)
    with strategy.scope():
        model = spec.build(cfg, info)
        if cfg.probe.online and _probe_labels(cfg, info):
            p = cfg.probe
            model.attach_online_probe(info.num_classes, p.online_lr, p.online_momentum,
                                      p.online_weight_decay)
        optimizer = build_optimizer(cfg.optimizer, cfg.train.batch_size, steps_per_epoch,
                                    cfg.train.epochs)
        if cfg.mixed_precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, jit_compile=cfg.jit_compile)
        model(tf.zeros((1, *info.image_shape)))
        optimizer.build(model.trainable_variables)
    return model, optimizer


def _write_projector(cfg, encoder: keras.Model, logdir: str) -> None:
    """Embeddings, labels and (for images) a sprite of the first test examples."""
    key = pipeline.input_key(cfg)
    inputs, labels = [], []
    for batch in pipeline.build_dataset(cfg, split="test", training=False):
        inputs.append(batch[key].numpy())
        labels.append(batch["label"].numpy())
        if sum(len(x) for x in inputs) >= cfg.eval.projector_examples:
            break
    inputs = np.concatenate(inputs)[: cfg.eval.projector_examples]
    labels = np.concatenate(labels)[: cfg.eval.projector_examples]
    embeddings = encoder.predict(inputs, batch_size=64, verbose=0)
    write_projector(logdir, embeddings, labels, inputs if inputs.ndim == 4 else None)


def restore_run(workdir: str, checkpoint: str | None = None):
    """(cfg, model, info) of a training run dir, restored from ``checkpoint`` or the latest.

    Errors name the path: a missing run dir/config, no checkpoint, a bad prefix.
    """
    cfg = load_run_config(workdir)
    info = pipeline.describe(cfg.dataset)
    strategy = distribute.make_strategy("default")
    model, optimizer = build_model(cfg, strategy, info, pipeline.steps_per_epoch(cfg, info))
    rc = ckpt_lib.RunCheckpoint(os.path.join(workdir, "checkpoints"), model, optimizer)
    path = checkpoint or rc.latest
    if path is None:
        raise FileNotFoundError(f"--workdir {workdir}: no checkpoint in "
                                f"{os.path.join(workdir, 'checkpoints')}")
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"--checkpoint {path}: no such checkpoint ({path}.index missing)")
    rc.checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
    return cfg, model, info


def _run_facts(cfg, info: pipeline.DatasetInfo, steps: int, replicas: int) -> dict:
    """The fingerprint's ``run.*`` facts: what identifies the training data, and the
    run's shape (core/fingerprint.py)."""
    facts = {"run.num_train": info.num_train, "run.image_shape": list(info.image_shape),
             "run.num_classes": info.num_classes, "run.steps_per_epoch": steps,
             "run.replicas": replicas}
    facts.update(pipeline.run_facts(cfg.dataset))  # the data's digest or its shards
    return facts


def _keep_config(cfg, out_dir: str) -> str:
    """Writes ``config-<n>.json`` (n = 0, 1, ... one per run start) and ``config.json``
    (the newest, read by evaluate and export); returns the new file's name.

    A run dir from before numbered configs keeps its ``config.json`` as config-0.json.
    """
    def numbered():
        found = []
        for name in tf.io.gfile.listdir(out_dir):
            stem = name[len("config-"):-len(".json")]
            if name.startswith("config-") and name.endswith(".json") and stem.isdigit():
                found.append(int(stem))
        return found

    latest = os.path.join(out_dir, "config.json")
    if not numbered() and tf.io.gfile.exists(latest):
        tf.io.gfile.copy(latest, os.path.join(out_dir, "config-0.json"))
    name = f"config-{max(numbered(), default=-1) + 1}.json"
    text = cfg.to_json_best_effort(indent=2)
    for path in (os.path.join(out_dir, name), latest):
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(text)
    return name


def untrained_model(cfg) -> keras.Model:
    """The config's model at its seeded random initialisation (the baseline)."""
    keras.utils.set_random_seed(cfg.seed)
    info = pipeline.describe(cfg.dataset)
    validate(cfg, info, rules=(pipeline.check_config,))
    model, _ = build_model(cfg, distribute.make_strategy("default"), info,
                           pipeline.steps_per_epoch(cfg, info))
    return model


def export_run(cfg, model: keras.Model, info: pipeline.DatasetInfo, export_root: str) -> str:
    """The trained ``model``'s encoder as a SavedModel for serving (the method's
    ``export`` hook: image encoders get uint8 image and JPEG signatures, CPC audio
    float waveforms), with ``encoder.keras`` (the Keras model, for fine-tuning) in
    the same folder. Returns the version folder.
    """
    path = model.export(export_root, info.image_shape,
                        jpeg_view=pipeline.jpeg_eval_view(cfg.dataset, info.image_shape[-1]))
    save_keras(model.encoder, path)
    return path


def run(cfg, workdir: str, verbose: int | str = "auto", return_model: bool = False,
        callbacks=()):
    """Trains ``cfg`` in ``workdir`` (resuming if it holds a checkpoint).

    ``callbacks``: extra Keras callbacks, called before the epoch's checkpoint
    is written. Returns the results dict (also written to ``results.json``),
    and the trained model too with ``return_model=True``. A JPEG that fails to
    decode mid-run is named (shard and record) by re-reading the shards.
    """
    try:
        return _run(cfg, workdir, verbose, return_model, callbacks)
    except tf.errors.InvalidArgumentError as error:
        named = pipeline.name_undecodable(cfg, error)
        if named is None:
            raise
        raise ValueError(named) from error


def _run(cfg, workdir: str, verbose, return_model: bool, callbacks):
    extra_callbacks = list(callbacks)
    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
        state = runtime.tf_state()
        if state["onednn"] and not runtime.this_machine().tf_onednn_default:
            print(f"warning: {runtime.DETERMINISTIC_ONEDNN}, and TensorFlow has them on in this "
                  "process: reruns and resumes may not be bit-identical (call "
                  "tf_contrastive.core.runtime.for_deterministic() before importing "
                  "TensorFlow, as the train binary does)", flush=True)
    strategy = distribute.make_strategy(cfg.strategy, cfg.tpu_address)
    info = pipeline.describe(cfg.dataset)
    replicas = strategy.num_replicas_in_sync
    validate(cfg, info, num_replicas=replicas, rules=(pipeline.check_config,))
    spec = get_method(cfg.method)
    chief = distribute.is_chief(strategy)
    pipelines = distribute.num_input_pipelines(strategy)
    steps = pipeline.steps_per_epoch(cfg, info, pipelines)
    # What the checkpoints depend on; a resume that changes it stops here, before any
    # file is written or anything restored (core/fingerprint.py).
    ckpt_dir = os.path.join(workdir, "checkpoints")
    fingerprint = fp_lib.build(cfg, _run_facts(cfg, info, steps, replicas),
                               skip_sections=other_sections(cfg.method))
    stored = fp_lib.load(ckpt_dir) if ckpt_lib.has_checkpoints(ckpt_dir) else None
    if stored is not None:
        accepted = fp_lib.check(ckpt_dir, stored, fingerprint, cfg.train.allow_changes,
                                method_refusal=spec.refusal)
        for key, (before, after) in accepted.items():
            print(f"resuming with a changed {key}: {before} -> {after} "
                  "(config.train.allow_changes)", flush=True)
    elif ckpt_lib.has_checkpoints(ckpt_dir):
        print(f"{ckpt_dir} has no {fp_lib.FILENAME} (written before run fingerprints): "
              "config changes since cannot be checked", flush=True)
    # Only the chief's files are kept; other workers write to a scratch dir.
    out_dir = distribute.worker_dir(workdir, strategy)
    ckpt_lib.check_writable(out_dir)
    config_file = _keep_config(cfg, out_dir)

    if pipelines > 1 and (info.num_train - steps * cfg.train.batch_size
                          >= cfg.train.batch_size):
        print(f"each epoch trains on {steps * cfg.train.batch_size} of the {info.num_train} "
              f"training records: the shards split unevenly across {pipelines} input "
              "pipelines, which feed equal numbers of batches", flush=True)
    if info.eval_off:
        print(f"kNN monitor, final kNN and projector off: {info.eval_off}", flush=True)
    if cfg.probe.online and not _probe_labels(cfg, info):
        print("online linear probe (config.probe.online) off: the training data has no "
              "labels (config.dataset.labeled=False)", flush=True)
    skipped = pipeline.skipped_records() if cfg.dataset.skip_bad_records else None
    model, optimizer = build_model(cfg, strategy, info, steps)
    run_ckpt = ckpt_lib.RunCheckpoint(os.path.join(out_dir, "checkpoints"), model, optimizer,
                                      max_to_keep=cfg.train.checkpoints_to_keep,
                                      restore_from=ckpt_dir)
    old_steps = stored["keys"].get("run.steps_per_epoch", steps) if stored else steps
    start_epoch, start_step = run_ckpt.restore_position(steps, old_steps)
    resumed = run_ckpt.restored is not None
    if resumed and old_steps != steps:
        # The schedule and the backup numbering count optimizer steps: continue them as if
        # every finished epoch had had this run's number of steps.
        optimizer.iterations.assign(start_epoch * steps)
    if chief:  # before the first checkpoint this run writes
        fp_lib.save(ckpt_dir, fingerprint, config_file)
    first_epoch = start_epoch
    warm = spec.warm_start(cfg)
    evaluating = not info.eval_off
    if resumed:
        print(f"resuming from {run_ckpt.latest} at epoch {start_epoch}"
              + (f", step {start_step}" if start_step else ""), flush=True)
    elif warm:
        t0 = time.time()
        _fill_bank(strategy, model, cfg)
        print(f"memory bank warm-started in {time.time() - t0:.1f}s", flush=True)

    def eval_dataset(split="test"):
        return pipeline.build_dataset(cfg, split=split, training=False)

    knn = KNNMonitor(eval_dataset, info.num_classes, k=cfg.eval.knn_k,
                     sigma=cfg.eval.knn_sigma, every=cfg.eval.every_epochs,
                     last_epoch=cfg.train.epochs,
                     make_train_dataset=lambda: eval_dataset("train"),
                     key=pipeline.input_key(cfg), use_bank=info.knn_bank)
    init_knn = {}
    if evaluating and not resumed and cfg.eval.knn_at_init:
        # The random-init baseline; after a warm start the bank already holds its features.
        knn.set_model(model)
        scores = knn.evaluate(recompute=not warm)
        init_knn = {f"{k}_at_init": v for k, v in scores.items()}
        knn.last = {}
        print(f"kNN top-1 of the untrained network: {init_knn['knn_top1_at_init']:.4f}",
              flush=True)
    sample = next(iter(pipeline.build_dataset(cfg, view_spec=spec.views(cfg, info),
                                              start_epoch=start_epoch, start_step=start_step)))
    callbacks = [knn] if evaluating else []
    callbacks += [ckpt_lib.StopOnNonFinite(), *extra_callbacks]
    if chief:
        callbacks += [
            RunMonitor(os.path.join(workdir, "tensorboard", "train"), views=sample,
                       scalars=lambda: {**model.monitor_scalars(),
                                        **({"data/skipped_records": skipped}
                                           if skipped is not None else {})},
                       banks=model.monitored_banks),
            keras.callbacks.TensorBoard(os.path.join(workdir, "tensorboard"),
                                        update_freq=cfg.train.log_every_steps)]
    if cfg.train.backup_every_steps:
        callbacks.append(ckpt_lib.BackupEverySteps(run_ckpt, cfg.train.backup_every_steps))
    callbacks.append(ckpt_lib.SaveEveryEpoch(run_ckpt))

    def train_ds(epoch, step=0):
        return strategy.distribute_datasets_from_function(
            lambda ctx: pipeline.build_dataset(cfg, ctx, view_spec=spec.views(cfg, info),
                                               start_epoch=epoch, start_step=step))

    t0 = time.time()
    history = {}
    if start_step:  # the rest of the epoch a mid-epoch backup was taken in
        history = model.fit(train_ds(start_epoch, start_step), epochs=start_epoch + 1,
                            initial_epoch=start_epoch, steps_per_epoch=steps - start_step,
                            callbacks=callbacks, verbose=verbose, shuffle=False).history
        start_epoch += 1
    if start_epoch < cfg.train.epochs:
        history = model.fit(train_ds(start_epoch), epochs=cfg.train.epochs,
                            initial_epoch=start_epoch, steps_per_epoch=steps,
                            callbacks=callbacks, verbose=verbose, shuffle=False).history
    train_seconds = time.time() - t0
    results = {"method": cfg.method, "epochs": cfg.train.epochs,
               "trained_epochs_this_run": cfg.train.epochs - first_epoch,
               "train_seconds_this_run": round(train_seconds, 1),
               "final_loss": float(history["loss"][-1]) if history.get("loss") else None,
               **({"skipped_records": int(skipped.numpy())} if skipped is not None else {}),
               **init_knn}
    if evaluating:
        knn.set_model(model)
        if knn.last and knn.last_from_bank:
            results.update({f"{k}_bank": v for k, v in knn.last.items()})
        # The final figure recomputes the training features, as the reference code does.
        results.update(knn.evaluate(recompute=True))
    else:
        results["knn_off"] = info.eval_off
    if evaluating and cfg.eval.projector_examples and chief:
        _write_projector(cfg, model.encoder, os.path.join(workdir, "tensorboard", "projector"))
    if cfg.train.export:
        results["export"] = export_run(cfg, model, info, os.path.join(out_dir, "export"))
    with tf.io.gfile.GFile(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    if not chief:
        tf.io.gfile.rmtree(out_dir)
    return (results, model) if return_model else results
