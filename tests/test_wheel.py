"""The wheel: built from the checkout, installed (not editable) into a fresh venv and run
outside the checkout, by config name and as the no-flags default job."""

import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the backport
    import tomli as tomllib

# Seconds-long runs of the Fashion-MNIST recipes: a slice of the data, a narrow network.
_TINY = [
    "--config.dataset.train_limit=256",
    "--config.dataset.eval_limit=128",
    "--config.train.batch_size=32",
    "--config.train.epochs=1",
    "--config.train.steps_per_epoch=2",
    "--config.model.width=4",
    "--config.instdisc.num_negatives=64",
    "--config.eval.knn_k=10",
    "--config.eval.batch_size=128",
    "--config.eval.knn_at_init=False",
    "--config.eval.projector_examples=0",
]


def test_pyproject_lists_every_package():
    """pyproject.toml names its packages (to map configs/ in); none may be forgotten."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        setuptools = tomllib.load(f)["tool"]["setuptools"]
    found = {
        os.path.relpath(d, ROOT).replace(os.sep, ".")
        for d, _, files in os.walk(os.path.join(ROOT, "tf_contrastive"))
        if "__init__.py" in files
    }
    assert set(setuptools["packages"]) == found | {"tf_contrastive.configs"}
    assert setuptools["package-dir"] == {"tf_contrastive.configs": "configs"}


def _build_wheel(tmp) -> str:
    """``pip wheel`` on a copy of the sources (the build leaves build/ and egg-info
    behind, which must not land in the checkout)."""
    src = tmp / "src"
    for name in ("tf_contrastive", "configs"):
        shutil.copytree(
            os.path.join(ROOT, name), src / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), src)
    dist = tmp / "dist"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(dist),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = glob.glob(str(dist / "tf_contrastive-*.whl"))
    return wheel


@pytest.mark.slow  # a wheel build, a venv and two training runs: ~60 s on 2 shared cores
def test_wheel_installs_and_trains_outside_the_checkout(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    shipped = {
        f"tf_contrastive/configs/{os.path.basename(p)}"
        for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
    }
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "tf_contrastive/core/config.py" in names
    assert not [n for n in names if n.startswith(("configs/", "tests/", "tools/"))]

    # TensorFlow and the rest come from this interpreter's site-packages; the package
    # itself only from the wheel (the machine's editable install must not win).
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = str(venv / "bin" / "python")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            "--force-reinstall",
            wheel,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"

    def run(*args):
        proc = subprocess.run(
            [python, *args], capture_output=True, text=True, env=env, cwd=str(outside), timeout=600
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        return proc.stdout

    where = run("-c", "import tf_contrastive; print(tf_contrastive.__file__)").strip()
    assert where.startswith(str(venv)), where

    for workdir, config in (("named", ["--config=instdisc_fashion_mnist"]), ("default", [])):
        out = run("-m", "tf_contrastive.train", *config, f"--workdir={workdir}", *_TINY)
        assert "final kNN top-1" in out, out[-2000:]
        with open(outside / workdir / "config.json") as f:
            cfg = json.load(f)
        with open(outside / workdir / "results.json") as f:
            results = json.load(f)
        # The named recipe evaluates every 5 epochs; the default job (2 epochs) every one.
        assert cfg["eval"]["every_epochs"] == (5 if workdir == "named" else 1)
        assert cfg["train"]["epochs"] == 1 and results["trained_epochs_this_run"] == 1
        assert 0.0 <= results["knn_top1"] <= 1.0
        for name in ("saved_model.pb", "encoder.keras"):
            assert os.path.exists(os.path.join(outside, results["export"], name)), name
