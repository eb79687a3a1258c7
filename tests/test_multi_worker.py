"""Two real worker processes on localhost under MultiWorkerMirroredStrategy."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = textwrap.dedent("""
    import importlib.util, os, sys
    import numpy as np
    import keras
    keras.config.disable_traceback_filtering()
    from tf_contrastive import trainer
    spec = importlib.util.spec_from_file_location(
        "smoke", os.path.join({root!r}, "configs", "smoke_instdisc_digits.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = mod.get_config()
    cfg.strategy = "multi_worker"
    cfg.train.batch_size = 50   # global: 25 per worker
    cfg.train.epochs = 1
    cfg.train.steps_per_epoch = 3
    cfg.eval.projector_examples = 0
    results, model = trainer.run(cfg, {workdir!r}, verbose=0, return_model=True)
    np.save(os.path.join({out!r}, f"bank_{{sys.argv[1]}}.npy"), model.bank.features.numpy())
    np.save(os.path.join({out!r}, f"z_{{sys.argv[1]}}.npy"), model.z.numpy())
""")


def _ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_end_with_equal_banks_and_only_the_chief_keeps_files(tmp_path):
    workdir, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    script = WORKER.format(root=ROOT, workdir=str(workdir), out=str(out))
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _ports(2)]}
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                       "index": i}}))
        procs.append(subprocess.Popen([sys.executable, "-c", script, str(i)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, cwd=ROOT))
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    bank0, bank1 = np.load(out / "bank_0.npy"), np.load(out / "bank_1.npy")
    np.testing.assert_array_equal(bank0, bank1)
    assert float(np.load(out / "z_0.npy")) == float(np.load(out / "z_1.npy")) > 0
    # Worker 0 is the chief: its checkpoint, TensorBoard and export stay; worker 1's
    # scratch directory is gone.
    assert (workdir / "checkpoints" / "checkpoint").exists()
    assert (workdir / "tensorboard").is_dir() and (workdir / "export").is_dir()
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith(".worker")) == []
