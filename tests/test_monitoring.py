"""What users open in TensorBoard is there: a real server over a finished smoke run."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tools.plot_knn import plot, read_scalar


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port, path, **params):
    url = f"http://127.0.0.1:{port}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


@pytest.fixture(scope="module")
def tensorboard_server(first_run):  # noqa: F811
    _, workdir, _ = first_run
    port = _free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    proc = subprocess.Popen([exe, "--logdir", os.path.join(workdir, "tensorboard"),
                             "--host", "127.0.0.1", "--port", str(port), "--load_fast=false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 90
        while True:
            try:
                tags = json.loads(_get(port, "/data/plugin/scalars/tags"))
                if "train" in tags and any("knn" in t for t in tags["train"]):
                    break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("tensorboard did not serve the run: "
                                   + proc.stderr.read().decode()[-1000:] if proc.poll() else "")
            time.sleep(1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_scalars_are_served(tensorboard_server):
    port = tensorboard_server
    tags = json.loads(_get(port, "/data/plugin/scalars/tags"))
    assert {"lr", "nce/Z", "bank/mean_norm", "eval/knn_top1"} <= set(tags["train"])
    knn = json.loads(_get(port, "/data/plugin/scalars/scalars", run="train",
                          tag="eval/knn_top1"))
    assert len(knn) >= 1 and 0.0 <= knn[-1][2] <= 1.0
    loss_runs = [r for r, t in tags.items() if "epoch_loss" in t]
    assert loss_runs, tags


def test_view_grid_image_is_served(tensorboard_server):
    port = tensorboard_server
    tags = json.loads(_get(port, "/data/plugin/images/tags"))
    assert "views/image" in tags["train"]
    entries = json.loads(_get(port, "/data/plugin/images/images", run="train",
                              tag="views/image"))
    blob = _get(port, "/data/plugin/images/individualImage?" + entries[0]["query"])
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"


def test_projector_export_is_served(tensorboard_server):
    port = tensorboard_server
    deadline = time.time() + 30  # the projector plugin reads its runs in the background
    while "projector" not in (runs := json.loads(_get(port, "/data/plugin/projector/runs"))):
        assert time.time() < deadline, runs
        time.sleep(1)
    cfg = json.loads(_get(port, "/data/plugin/projector/info", run="projector"))
    emb = cfg["embeddings"][0]
    assert emb["metadataPath"].endswith("metadata.tsv") and emb["sprite"]["imagePath"]


def test_knn_plot_tool(first_run, tmp_path):  # noqa: F811
    _, workdir, _ = first_run
    assert read_scalar(workdir, "eval/knn_top1")
    runs = tmp_path / "runs"
    runs.mkdir()
    os.symlink(workdir, runs / "smoke")
    out = tmp_path / "knn.png"
    curves = plot(str(runs), str(out), "eval/knn_top1")
    assert "smoke" in curves and out.read_bytes()[:4] == b"\x89PNG"
