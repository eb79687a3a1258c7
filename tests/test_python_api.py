"""The README's Python API example, executed as written in a fresh process."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.helpers import ENV, ROOT
from tf_contrastive.models import add_head, backbone_of

# Run after the example, in its namespace: what it trained, as JSON on the last line.
_CHECKS = """
import json as _json
print(_json.dumps({
    "loss": [float(v) for v in history.history["loss"]],
    "bank_labels": model.bank.labels.numpy().tolist(),
    "bank_norms": np.linalg.norm(model.bank.features.numpy(), axis=1).tolist(),
    "embedding_norms": np.linalg.norm(embeddings, axis=1).tolist(),
    "embedding_shape": list(embeddings.shape),
    "optimizer_steps": int(model.optimizer.iterations.numpy()),
}))
"""


def readme_python_block(section: str) -> str:
    """The first ```python block under the README heading ``## <section>``."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return body.split("```python\n", 1)[1].split("\n```", 1)[0]


def test_readme_python_api_example_runs_as_written(tmp_path):
    code = readme_python_block("Python API")
    assert "InstDisc(encoder=" in code and "model.fit(dataset" in code
    proc = subprocess.run(
        [sys.executable, "-c", code + "\n" + _CHECKS],
        capture_output=True,
        text=True,
        env=dict(ENV, PYTHONPATH=ROOT),
        cwd=str(tmp_path),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "softmax loss over the bank:" in proc.stdout
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["loss"]) == 2 and all(v == v and abs(v) < 1e6 for v in out["loss"])
    assert out["optimizer_steps"] == 8  # 2 epochs of 256 images in batches of 64
    # Every image's bank row was written (its label replaced the -1 of "never seen"),
    # with a unit-norm feature; the encoder's embeddings are unit-norm.
    assert out["bank_labels"] == [i % 10 for i in range(256)]
    assert all(abs(v - 1.0) < 1e-4 for v in out["bank_norms"])
    assert out["embedding_shape"] == [8, 64]
    assert all(abs(v - 1.0) < 1e-4 for v in out["embedding_norms"])


def test_add_head_names_a_backbone_without_pooled_features():
    unpooled = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3)], name="convs")
    with pytest.raises(ValueError, match=r"backbone 'convs' outputs shape \(None, 6, 6, 4\)"):
        add_head(unpooled)
    encoder = add_head(keras.Sequential([unpooled, keras.layers.GlobalAveragePooling2D()]), 8)
    assert encoder.output_shape == (None, 8)
    assert encoder.get_layer("head").input.shape == (None, 4)  # what backbone_of hands on


def test_the_mlp_head_sits_between_the_pooled_features_and_the_embedding():
    pooled = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                               keras.layers.GlobalAveragePooling2D()], name="convs")
    encoder = add_head(pooled, 8, head="mlp")
    hidden = encoder.get_layer("head_hidden")
    assert hidden.input.shape == (None, 4) and hidden.units == 4  # 0: the backbone's width
    assert encoder.get_layer("head").input.shape == (None, 4)
    features = backbone_of(encoder)
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(features(x).numpy(), pooled(x).numpy(), rtol=1e-6)
    relu = np.maximum(features(x).numpy() @ hidden.kernel.numpy() + hidden.bias.numpy(), 0)
    head = encoder.get_layer("head")
    want = relu @ head.kernel.numpy() + head.bias.numpy()
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(encoder(x).numpy(), want, rtol=1e-5, atol=1e-6)
    assert add_head(pooled, 8, head="mlp", head_hidden=16).get_layer("head_hidden").units == 16
