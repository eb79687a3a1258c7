"""Every method's SavedModel export, reloaded in a fresh process with TensorFlow only.

CMC (L/ab, from ImageNet-schema records), InvaSpread, CPC v2 and InstDisc trained
on two replicas, plus the export binary's output from an earlier checkpoint: each
signature's outputs equal the checkpoint's encoder run in this process on the same
inputs. (InstDisc on one device and CPC audio: tests/test_train_e2e.py and
tests/test_cpc_e2e.py.) And each export's ``encoder.keras``, loaded in a fresh process
through ``tf_contrastive.models.load_encoder``: the checkpoint's outputs, then fine-tuned.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import ENV, run_module
from tf_contrastive import trainer
from tf_contrastive.core.config import load_run_config
from tf_contrastive.data import pipeline
from tf_contrastive.models.encoder import backbone_of

IMAGE_EXPORTS = ["cmc_tfrecords", "invaspread", "cpc_image", "mirrored", "simclr", "export_binary"]
SIGNATURES = ["embed_images", "embed_jpeg", "serving_default"]

_FRESH = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    for name, path in json.loads(sys.argv[1]).items():
        m = tf.saved_model.load(path)
        images = tf.constant(np.load(f"{name}_images.npy"))
        jpegs = tf.constant(list(np.load(f"{name}_jpegs.npy", allow_pickle=True)))
        out = {"signatures": np.array(sorted(m.signatures.keys()))}
        for key, value in m.signatures["embed_images"](images=images).items():
            out[f"embed_images/{key}"] = value.numpy()
        for sig in ("embed_jpeg", "serving_default"):
            for key, value in m.signatures[sig](jpeg=jpegs).items():
                out[f"{sig}/{key}"] = value.numpy()
        np.savez(f"{name}_out.npz", **out)
    assert not [n for n in sys.modules if n.startswith("tf_contrastive")], "imported the package"
""")


@pytest.fixture(scope="module")
def binary_export(smoke_runs):
    """``python -m tf_contrastive.export`` on InvaSpread's epoch-1 checkpoint."""
    workdir = smoke_runs["invaspread"]["workdir"]
    proc = run_module(
        "tf_contrastive.export",
        f"--workdir={workdir}",
        f"--checkpoint={os.path.join(workdir, 'checkpoints', 'ckpt-1')}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def _sources(smoke_runs, binary_export):
    """name -> (export path, workdir, checkpoint prefix the export was made from)."""
    out = {}
    for name in IMAGE_EXPORTS[:-1]:
        run = smoke_runs[name]
        epochs = run["results"]["epochs"]
        out[name] = (
            run["results"]["export"],
            run["workdir"],
            os.path.join(run["workdir"], "checkpoints", f"ckpt-{epochs}"),
        )
    workdir = smoke_runs["invaspread"]["workdir"]
    out["export_binary"] = (binary_export, workdir, os.path.join(workdir, "checkpoints", "ckpt-1"))
    return out


def _inputs(image_shape, seed):
    """uint8 images at the training size, and JPEGs of another size (resized or cropped)."""
    h, w, c = image_shape
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, size=(5, h, w, c), dtype=np.uint8)
    jpegs = [
        tf.io.encode_jpeg(rng.integers(0, 255, size=(h + 5, w + 9, c), dtype=np.uint8)).numpy()
        for _ in range(3)
    ]
    return images, jpegs


@pytest.fixture(scope="module")
def fresh_outputs(smoke_runs, binary_export, tmp_path_factory):
    """One fresh process loads every export and calls every signature."""
    work = tmp_path_factory.mktemp("fresh_reload")
    sources = _sources(smoke_runs, binary_export)
    inputs = {}
    for seed, (name, (_, workdir, _)) in enumerate(sources.items()):
        info = pipeline.describe(load_run_config(workdir).dataset)
        # The export binary's export gets the inputs of the run's own export.
        inputs[name] = (
            inputs.get("invaspread") if name == "export_binary" else _inputs(info.image_shape, seed)
        )
        np.save(work / f"{name}_images.npy", inputs[name][0])
        np.save(work / f"{name}_jpegs.npy", np.array(inputs[name][1], dtype=object))
    _run_fresh(_FRESH, {name: path for name, (path, _, _) in sources.items()}, work)
    return sources, inputs, {name: dict(np.load(work / f"{name}_out.npz")) for name in sources}


@pytest.mark.parametrize("name", IMAGE_EXPORTS)
def test_export_reloads_in_a_fresh_process_with_the_checkpoints_outputs(name, fresh_outputs):
    sources, inputs, outputs = fresh_outputs
    _, workdir, checkpoint = sources[name]
    served = outputs[name]
    assert list(served["signatures"]) == SIGNATURES
    cfg, model, info = trainer.restore_run(workdir, checkpoint)
    images, jpegs = inputs[name]
    x = tf.cast(images, tf.float32) / 255.0
    embeddings = model.encoder(x, training=False).numpy()
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(served["embed_images/embeddings"], embeddings, atol=1e-5)
    np.testing.assert_allclose(
        served["embed_images/features"],
        backbone_of(model.encoder)(x, training=False).numpy(),
        atol=1e-5,
    )
    view = pipeline.jpeg_eval_view(cfg.dataset, info.image_shape[-1])
    from_jpeg = model.encoder(tf.stack([view(j) for j in jpegs]), training=False).numpy()
    for sig in ("embed_jpeg", "serving_default"):
        np.testing.assert_allclose(served[f"{sig}/embeddings"], from_jpeg, atol=1e-5, err_msg=sig)


def test_export_binary_writes_a_numbered_version_of_the_chosen_checkpoint(
    smoke_runs, binary_export, fresh_outputs
):
    workdir = smoke_runs["invaspread"]["workdir"]
    assert os.path.dirname(binary_export) == os.path.join(workdir, "export")
    assert os.path.basename(binary_export).isdigit()  # a version TF Serving loads
    assert binary_export != smoke_runs["invaspread"]["results"]["export"]
    # Made from ckpt-1, not the latest (ckpt-2, the end-of-training export): other weights.
    _, _, outputs = fresh_outputs
    assert not np.allclose(
        outputs["export_binary"]["embed_images/embeddings"],
        outputs["invaspread"]["embed_images/embeddings"],
        atol=1e-3,
    )


# A fresh process with only Keras and tf_contrastive.models: each export's encoder.keras,
# its outputs, then a classifier fine-tuned on its pooled features (encoder trainable).
_KERAS_FRESH = textwrap.dedent("""
    import json, sys
    import keras
    import numpy as np
    from tf_contrastive.models import backbone_of, load_encoder

    for name, path in json.loads(sys.argv[1]).items():
        encoder = load_encoder(path)
        x = np.load(f"{name}_images.npy").astype("float32") / 255.0
        features = backbone_of(encoder)
        out = {"embeddings": encoder.predict(x, verbose=0),
               "features": features.predict(x, verbose=0)}
        before = {v.path: v.numpy().copy() for v in encoder.trainable_variables}
        inputs = keras.Input(x.shape[1:])
        classifier = keras.Model(inputs, keras.layers.Dense(3)(features(inputs)))
        classifier.compile(optimizer=keras.optimizers.Adam(1e-2),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        # An even batch (the 5 images and the first again): Keras fit through the CIFAR
        # ResNet-18 at an odd batch size aborts under oneDNN (tools/onednn_odd_batch.py).
        tune = np.concatenate([x, x[:1]])
        history = classifier.fit(tune, np.arange(len(tune)) % 3, batch_size=len(tune),
                                 epochs=6, shuffle=False, verbose=0)
        out["loss"] = np.array(history.history["loss"])
        out["unchanged"] = np.array([v.path for v in encoder.trainable_variables
                                     if np.array_equal(v.numpy(), before[v.path])] or [""])
        out["num_trainable"] = np.array(len(before))
        np.savez(f"{name}_keras.npz", **out)
""")


def _run_fresh(script: str, paths: dict, work) -> None:
    """Runs ``script`` in a fresh Python process in ``work`` with the JSON of ``paths``."""
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(paths)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=str(work),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def keras_outputs(smoke_runs, binary_export, tmp_path_factory):
    """One fresh process loads every export's encoder.keras and fine-tunes on it."""
    work = tmp_path_factory.mktemp("keras_reload")
    sources = _sources(smoke_runs, binary_export)
    inputs = {}
    for seed, (name, (_, workdir, _)) in enumerate(sources.items()):
        info = pipeline.describe(load_run_config(workdir).dataset)
        inputs[name] = _inputs(info.image_shape, 100 + seed)[0]
        np.save(work / f"{name}_images.npy", inputs[name])
    paths = {name: os.path.join(path, "encoder.keras") for name, (path, _, _) in sources.items()}
    _run_fresh(_KERAS_FRESH, paths, work)
    return sources, inputs, {name: dict(np.load(work / f"{name}_keras.npz")) for name in sources}


@pytest.mark.parametrize("name", IMAGE_EXPORTS)
def test_keras_encoder_loads_in_a_fresh_process_and_fine_tunes(name, keras_outputs):
    sources, inputs, outputs = keras_outputs
    _, workdir, checkpoint = sources[name]
    loaded = outputs[name]
    _, model, _ = trainer.restore_run(workdir, checkpoint)
    x = tf.cast(inputs[name], tf.float32) / 255.0
    # Before fine-tuning the loaded encoder is the checkpoint's.
    np.testing.assert_allclose(loaded["embeddings"], model.encoder(x, training=False).numpy(),
                               atol=1e-5)
    np.testing.assert_allclose(
        loaded["features"], backbone_of(model.encoder)(x, training=False).numpy(), atol=1e-5
    )
    # Fine-tuning lowers the classifier's loss and moves every encoder weight under the
    # pooled features (the unused embedding head keeps its values).
    assert loaded["loss"][-1] < loaded["loss"][0], loaded["loss"]
    unchanged = [p for p in loaded["unchanged"] if p]
    assert int(loaded["num_trainable"]) > len(unchanged)
    assert all("head" in p for p in unchanged), unchanged
