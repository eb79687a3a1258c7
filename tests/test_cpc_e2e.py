"""CPC through the training binary's code path: audio records and image patches end to end."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import ROOT, smoke_cfg
from tf_contrastive import trainer
from tf_contrastive.models import load_encoder


@pytest.fixture(scope="module")
def audio_run(audio_records, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("cpc_audio_run"))
    cfg = smoke_cfg("smoke_cpc_audio")
    cfg.dataset.data_dir = audio_records
    cfg.train.epochs = 1
    return cfg, workdir, trainer.run(cfg, workdir, verbose=0)


def test_audio_run_reports_loss_knn_and_resumes(audio_run, capsys):
    cfg, workdir, results = audio_run
    assert np.isfinite(results["final_loss"]) and 0.0 <= results["knn_top1"] <= 1.0
    assert "knn_top1_at_init" in results
    cfg.train.epochs = 2
    cfg.train.allow_changes = ("train.epochs",)
    again = trainer.run(cfg, workdir, verbose=0)
    assert "resuming from" in capsys.readouterr().out
    assert again["trained_epochs_this_run"] == 1


def test_audio_export_takes_float_waveforms_in_a_fresh_process(audio_run, tmp_path):
    cfg, workdir, results = audio_run
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, size=(3, 160 * 20)).astype(np.float32)
    np.save(tmp_path / "wave.npy", wave)
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf, sys
        m = tf.saved_model.load({results["export"]!r})
        out = m.signatures["serving_default"](waveform=tf.constant(np.load("wave.npy")))
        for key in ("embeddings", "features", "context", "latents"):
            np.save(key + ".npy", out[key].numpy())
        assert not any(name.startswith("tf_contrastive") for name in sys.modules)
        print(sorted(m.signatures.keys()))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "['embed_waveforms', 'serving_default']" in proc.stdout
    # The export was written at the end of epoch 1 (another test may have trained on).
    _, model, _ = trainer.restore_run(workdir, os.path.join(workdir, "checkpoints", "ckpt-1"))
    z = model.g_enc(wave)
    np.testing.assert_allclose(np.load(tmp_path / "latents.npy"), z.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "context.npy"), model.g_ar(z).numpy(),
                               atol=1e-5)
    assert np.load(tmp_path / "context.npy").shape == (3, 20, cfg.cpc.context_units)
    np.testing.assert_allclose(np.load(tmp_path / "embeddings.npy"),
                               model.encoder(wave).numpy(), atol=1e-5)


def test_audio_export_holds_the_encoder_as_a_keras_model(audio_run):
    _, workdir, results = audio_run
    encoder = load_encoder(os.path.join(results["export"], "encoder.keras"))
    wave = np.random.default_rng(1).uniform(-0.5, 0.5, size=(2, 160 * 12)).astype(np.float32)
    _, model, _ = trainer.restore_run(workdir, os.path.join(workdir, "checkpoints", "ckpt-1"))
    np.testing.assert_allclose(encoder(wave).numpy(), model.encoder(wave).numpy(), atol=1e-5)


def test_evaluate_binary_runs_speaker_and_phone_probes(audio_run, tmp_path):
    _, workdir, _ = audio_run
    out = str(tmp_path / "eval.json")
    proc = subprocess.run([sys.executable, "-m", "tf_contrastive.evaluate",
                           f"--workdir={workdir}", "--protocols=knn,linear,phone",
                           "--probe_epochs=2", f"--output={out}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(out))
    for key in ("knn_top1", "linear_top1", "phone_linear_top1"):
        assert 0.0 <= results[key] <= 1.0, key
    assert results["test_examples"] == 3  # one held-out utterance per speaker


def test_cpc_image_trains_resumes_and_exports(tmp_path, capsys):
    cfg = smoke_cfg("smoke_cpc_image_digits")
    cfg.train.epochs = 1
    workdir = str(tmp_path / "run")
    results = trainer.run(cfg, workdir, verbose=0)
    assert np.isfinite(results["final_loss"]) and 0.0 <= results["knn_top1"] <= 1.0
    cfg.train.epochs = 2
    cfg.train.allow_changes = ("train.epochs",)
    trainer.run(cfg, workdir, verbose=0)
    assert "resuming from" in capsys.readouterr().out
    _, model, _ = trainer.restore_run(workdir)
    loaded = tf.saved_model.load(results["export"])
    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 1), dtype=np.uint8)
    served = loaded.signatures["embed_images"](images=tf.constant(images))
    # The export is from epoch 1, the restored model from epoch 2: only shapes agree.
    assert served["embeddings"].shape == model.encoder(images / 255.0).shape
    untrained = trainer.untrained_model(cfg)
    assert not np.allclose(untrained.encoder(images / 255.0).numpy(),
                           model.encoder(images / 255.0).numpy())
