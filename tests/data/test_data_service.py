"""Training input through a real tf.data service: a dispatcher and a worker
started as separate processes (tools/data_service.py) on loopback."""

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import ROOT
from tests.helpers import smoke_cfg as _smoke_cfg
from tf_contrastive import trainer
from tf_contrastive.core.config import ConfigError, validate
from tf_contrastive.data import pipeline


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _start(args, tmp_path, name):
    log = open(tmp_path / f"{name}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "tools.data_service", *args], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    return proc, tmp_path / f"{name}.log"


def _wait_serving(proc, log, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if "serving at" in log.read_text():
            return
        assert proc.poll() is None, log.read_text()[-2000:]
        time.sleep(0.2)
    raise AssertionError(f"not serving after {timeout}s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("data_service")
    port = _free_port()
    dispatcher, dlog = _start(["--role=dispatcher", f"--port={port}"], tmp, "dispatcher")
    procs = [dispatcher]
    try:
        _wait_serving(dispatcher, dlog)
        worker, wlog = _start(["--role=worker", f"--dispatcher=localhost:{port}",
                               "--worker_host=localhost"], tmp, "worker")
        procs.append(worker)
        _wait_serving(worker, wlog)
        yield f"grpc://localhost:{port}"
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _batches(ds, n):
    return [{k: v.numpy() for k, v in b.items()} for b, _ in zip(ds, range(n), strict=False)]


def test_one_service_worker_produces_the_local_batches(service):
    cfg = _smoke_cfg()
    local = _batches(pipeline.build_dataset(cfg, start_epoch=1), 4)
    cfg.dataset.data_service = service
    remote = _batches(pipeline.build_dataset(cfg, start_epoch=1), 4)
    for a, b in zip(local, remote, strict=True):
        assert a.keys() == b.keys()
        for key in a:  # same ids, same augmented pixels: the same graph ran on the worker
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_training_reads_from_the_service(service, tmp_path):
    cfg = _smoke_cfg()
    cfg.dataset.data_service = service
    cfg.train.epochs, cfg.train.steps_per_epoch = 1, 5
    cfg.eval.knn_at_init, cfg.eval.projector_examples, cfg.train.export = False, 0, False
    results = trainer.run(cfg, str(tmp_path), verbose=0)
    assert np.isfinite(results["final_loss"]) and os.path.exists(
        tmp_path / "checkpoints" / "ckpt-1.index")


@pytest.mark.parametrize("address", ["localhost", "http://x:1", "grpc://host:port"])
def test_a_bad_dispatcher_address_names_the_key(address):
    cfg = _smoke_cfg()
    cfg.dataset.data_service = address
    with pytest.raises(ConfigError, match="config.dataset.data_service: .* grpc://host:port"):
        validate(cfg)


def test_worker_without_dispatcher_is_a_usage_error():
    out = subprocess.run([sys.executable, "-m", "tools.data_service", "--role=worker"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "--role=worker needs --dispatcher=HOST:PORT" in out.stderr
