"""The training binary end to end on the smoke config: train, resume, monitor, export."""

import glob
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from tests.helpers import ROOT
from tests.helpers import smoke_cfg as _smoke_cfg
from tf_contrastive import trainer as train
from tf_contrastive.core import checkpoint as ckpt_lib
from tf_contrastive.core import distribute
from tf_contrastive.data import pipeline
from tf_contrastive.models.encoder import backbone_of


def _restored(cfg, workdir, number=None):
    """A fresh model restored from the latest checkpoint (or ckpt-<number>)."""
    info = pipeline.describe(cfg.dataset)
    strategy = distribute.make_strategy("default")
    model, optimizer = train.build_model(cfg, strategy, info,
                                         pipeline.steps_per_epoch(cfg, info))
    rc = ckpt_lib.RunCheckpoint(os.path.join(workdir, "checkpoints"), model, optimizer)
    if number is None:
        return model, optimizer, rc.restore_latest()
    rc.checkpoint.restore(os.path.join(workdir, "checkpoints", f"ckpt-{number}")).expect_partial()
    return model, optimizer, number


def test_first_run_writes_config_results_checkpoint(first_run):
    cfg, workdir, results = first_run
    assert json.load(open(os.path.join(workdir, "config.json")))["method"] == "instdisc"
    assert 0.0 <= results["knn_top1"] <= 1.0 and np.isfinite(results["final_loss"])
    assert json.load(open(os.path.join(workdir, "results.json")))["knn_top1"] == results["knn_top1"]
    assert os.path.exists(os.path.join(workdir, "checkpoints", "checkpoint"))


def test_restore_gives_back_bank_z_and_optimizer_state_exactly(first_run):
    cfg, workdir, _ = first_run
    reader = tf.train.load_checkpoint(os.path.join(workdir, "checkpoints"))
    saved = {name: reader.get_tensor(name) for name, _ in reader.get_variable_to_shape_map().items()}
    model, optimizer, epoch = _restored(cfg, workdir)
    assert epoch == 1
    bank_key = [k for k in saved if "bank" in k and "features" in k and "OPTIMIZER" not in k]
    z_key = [k for k in saved if k.startswith("model/z/")]
    assert len(bank_key) == 1 and len(z_key) == 1
    np.testing.assert_array_equal(model.bank.features.numpy(), saved[bank_key[0]])
    assert float(model.z.numpy()) == float(saved[z_key[0]]) > 0  # estimated, then frozen
    assert int(optimizer.iterations.numpy()) == cfg.train.steps_per_epoch
    assert np.all(model.bank.labels.numpy() >= 0)  # the warm start saw every row


def test_rerun_resumes_from_the_checkpoint(first_run, capsys):
    cfg, workdir, _ = first_run
    before_model, _, _ = _restored(cfg, workdir)
    bank_before = before_model.bank.features.numpy()
    cfg2 = _smoke_cfg()
    cfg2.train.epochs = 2
    cfg2.train.allow_changes = ("train.epochs",)
    results = train.run(cfg2, workdir, verbose=0)
    assert "resuming from" in capsys.readouterr().out
    assert results["trained_epochs_this_run"] == 1
    after_model, optimizer, epoch = _restored(cfg2, workdir)
    assert epoch == 2 and int(optimizer.iterations.numpy()) == 2 * cfg.train.steps_per_epoch
    assert not np.array_equal(after_model.bank.features.numpy(), bank_before)


def test_tensorboard_has_losses_lr_knn_and_view_grid(first_run):
    _, workdir, _ = first_run
    tags = set()
    for path in glob.glob(os.path.join(workdir, "tensorboard", "**", "events.*"), recursive=True):
        for raw in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            tags.update(v.tag for v in event.summary.value)
    assert {"epoch_loss", "lr", "nce/Z", "bank/mean_norm", "eval/knn_top1",
            "views/image"} <= tags


def test_export_reloads_in_a_fresh_process_with_same_embeddings(first_run, tmp_path):
    cfg, workdir, results = first_run
    export = results["export"]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(7, 8, 8, 1), dtype=np.uint8)
    jpegs = [tf.io.encode_jpeg(img).numpy() for img in images]
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "jpegs.npy", np.array(jpegs, dtype=object), allow_pickle=True)
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf, sys
        m = tf.saved_model.load({export!r})
        x = tf.constant(np.load({str(tmp_path / "images.npy")!r}))
        j = tf.constant(list(np.load({str(tmp_path / "jpegs.npy")!r}, allow_pickle=True)))
        np.save("out_images.npy", m.signatures["embed_images"](images=x)["embeddings"].numpy())
        np.save("out_jpeg.npy", m.signatures["serving_default"](jpeg=j)["embeddings"].numpy())
        np.save("out_feats.npy", m.signatures["embed_images"](images=x)["features"].numpy())
        assert not any(name.startswith("tf_contrastive") for name in sys.modules)
        print(sorted(m.signatures.keys()))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "['embed_images', 'embed_jpeg', 'serving_default']" in proc.stdout
    model, _, _ = _restored(cfg, workdir, number=1)
    direct = model.encoder(tf.cast(images, tf.float32) / 255.0, training=False).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "out_images.npy"), direct, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(direct, axis=1), 1.0, rtol=1e-5)
    view = pipeline.jpeg_eval_view(cfg.dataset, 1)
    from_jpeg = model.encoder(tf.stack([view(j) for j in jpegs]), training=False).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "out_jpeg.npy"), from_jpeg, atol=1e-5)
    feats = backbone_of(model.encoder)(tf.cast(images, tf.float32) / 255.0, training=False)
    np.testing.assert_allclose(np.load(tmp_path / "out_feats.npy"), feats.numpy(), atol=1e-5)


def test_saved_model_cli_lists_signatures_with_shapes_and_dtypes(first_run):
    _, _, results = first_run
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    proc = subprocess.run([cli, "show", "--dir", results["export"], "--all"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    jpeg = out[out.index("signature_def['embed_jpeg']"):]
    assert "dtype: DT_STRING" in jpeg.split("signature_def")[1]
    images = out[out.index("signature_def['embed_images']"):].split("signature_def")[1]
    assert "dtype: DT_UINT8" in images and "shape: (-1, 8, 8, 1)" in images
    assert "shape: (-1, 16)" in images  # embeddings


def _cli(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


def test_evaluate_binary_matches_the_training_knn(first_run, tmp_path):
    _, workdir, results = first_run
    out = tmp_path / "eval.json"
    proc = _cli("tf_contrastive.evaluate", f"--workdir={workdir}",
                f"--checkpoint={os.path.join(workdir, 'checkpoints', 'ckpt-1')}",
                "--protocols=knn,linear,svm,recall", "--probe_epochs=3", f"--output={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ev = json.load(open(out))
    assert abs(ev["knn_top1"] - results["knn_top1"]) <= 0.002
    for key in ("linear_top1", "svm_top1", "recall@1"):
        assert 0.0 <= ev[key] <= 1.0
    assert ev["recall_classes"] == [5, 6, 7, 8, 9]
    assert "knn_top1" in proc.stdout and "%" in proc.stdout


def test_evaluate_and_export_fail_clearly_on_bad_paths(first_run, tmp_path):
    _, workdir, _ = first_run
    missing = os.path.join(workdir, "checkpoints", "ckpt-99")
    proc = _cli("tf_contrastive.export", f"--workdir={workdir}", f"--checkpoint={missing}")
    assert proc.returncode != 0 and f"--checkpoint {missing}: no such checkpoint" in proc.stderr
    wrong = tmp_path / "not_an_encoder"

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return {"y": 2 * x}

    other = Other()
    tf.saved_model.save(other, str(wrong), signatures={"double": other.double})
    proc = _cli("tf_contrastive.evaluate", f"--saved_model={wrong}", f"--workdir={workdir}")
    assert proc.returncode != 0
    assert f"--saved_model {wrong}: not a tf_contrastive encoder export" in proc.stderr
    proc = _cli("tf_contrastive.evaluate", f"--workdir={tmp_path / 'nothing'}")
    assert proc.returncode != 0 and "no config.json" in proc.stderr


def test_cmc_on_grayscale_trains_and_exports(tmp_path):
    # CMC's resume (SIGKILL mid-epoch, bit-identical, on TFRecords): tests/e2e.
    cfg = _smoke_cfg("smoke_cmc_digits")
    cfg.train.epochs = 1
    results, model = train.run(cfg, str(tmp_path), verbose=0, return_model=True)
    assert np.isfinite(results["final_loss"]) and 0 <= results["knn_top1"] <= 1
    copies = [b.labels.numpy() for b in model.banks]
    assert all(np.all(c >= 0) for c in copies)  # both banks warm-started
    loaded = tf.saved_model.load(results["export"])
    images = tf.zeros([3, 8, 8, 1], tf.uint8)
    out = loaded.signatures["embed_images"](images=images)
    assert out["embeddings"].shape == (3, 32)  # two 16-d views, concatenated
    np.testing.assert_allclose(np.linalg.norm(out["embeddings"].numpy(), axis=1), 1, rtol=1e-5)
    assert out["features"].shape == (3, 64)  # two 32-d pooled backbones


def test_cmc_lab_on_converted_imagenet_tfrecords(tmp_path):
    from tests.helpers import rewrite_record, write_mixed_jpeg_folder
    from tools.build_imagenet_tfrecords import convert

    write_mixed_jpeg_folder(str(tmp_path / "folder"))
    convert(str(tmp_path / "folder"), str(tmp_path / "tfr"), train_shards=2,
            validation_shards=1, num_threads=2)
    # One training record's payload is a PNG: skipped, logged and counted.
    rewrite_record(tmp_path / "tfr", "train-00001-of-00002", 0,
                    encoded=tf.io.encode_png(tf.zeros([8, 8, 3], tf.uint8)).numpy())
    cfg = _smoke_cfg("smoke_cmc_digits")
    cfg.dataset.skip_bad_records = True
    cfg.dataset.name = "imagenet"
    cfg.dataset.data_dir = str(tmp_path / "tfr")
    cfg.dataset.image_size = 16
    cfg.dataset.eval_limit = 0
    cfg.dataset.shuffle_buffer = 8
    cfg.cmc.views = "lab"
    cfg.cmc.num_negatives = 8
    cfg.train.batch_size = 4
    cfg.eval.batch_size = 4
    cfg.eval.knn_k = 5
    cfg.eval.projector_examples = 6
    cfg.eval.knn_at_init = False
    work = str(tmp_path / "run")
    results = train.run(cfg, work, verbose=0)
    assert np.isfinite(results["final_loss"]) and results["skipped_records"] >= 1
    tags = set()
    for path in glob.glob(os.path.join(work, "tensorboard", "train", "events.*")):
        for raw in tf.data.TFRecordDataset(path):
            tags.update(v.tag for v in tf.compat.v1.Event.FromString(raw.numpy()).summary.value)
    # 3 steps an epoch, TensorBoard's update_freq 50: the epoch scalars must still be there.
    assert {"data/skipped_records", "lr", "nce/Z_view_l_to_view_ab"} <= tags
    # Its resume (SIGKILL mid-epoch, bit-identical) is tests/e2e's cmc_tfrecords case.
    loaded = tf.saved_model.load(results["export"])
    jpeg = tf.io.encode_jpeg(tf.zeros([40, 50, 3], tf.uint8))
    out = loaded.signatures["serving_default"](jpeg=tf.stack([jpeg, jpeg]))
    assert out["embeddings"].shape == (2, 32)
