"""Test-session setup: quiet TF logs, two logical CPUs for MirroredStrategy tests, and
the grouping of tests for the two pytest-xdist workers of the README's test command.

The logical devices must be configured before TensorFlow initialises its
runtime, so this runs at import time, before any test module builds a tensor.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Subprocesses (training runs, fresh-process reloads) import this checkout, whatever
# is installed (an editable install may point at another clone).
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
# Tests see the runtime's documented defaults, not what tools/benchmark.py --what=settings
# --save chose for this machine (test subprocesses inherit this too).
os.environ["TF_CONTRASTIVE_SETTINGS"] = os.path.join(os.path.dirname(__file__), "absent",
                                                     "settings.json")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import pytest  # noqa: E402

# Session fixtures run once per xdist worker that uses them: the end-to-end tests share
# the smoke runs (tests/e2e/conftest.py, about a minute), so they go to one worker;
# every other module is a group of its own, keeping its module fixtures in one worker.
_SHARED_GROUPS = {os.path.join("tests", "e2e"): "e2e"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = os.path.relpath(str(item.path), _ROOT)
        group = next((g for d, g in _SHARED_GROUPS.items() if path.startswith(d + os.sep)),
                     path)
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Several strategies in one process reuse collective instance keys and can
    abort each other's all-gathers, so tests share this one.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """(cfg, workdir, results) of one epoch of the InstDisc smoke config (per test module)."""
    from tests.helpers import smoke_cfg
    from tf_contrastive import trainer

    workdir = str(tmp_path_factory.mktemp("run"))
    cfg = smoke_cfg()
    cfg.train.epochs = 1
    results = trainer.run(cfg, workdir, verbose=0)
    return cfg, workdir, results


@pytest.fixture(scope="session")
def audio_records(tmp_path_factory):
    """Audio TFRecords of 3 espeak-ng speakers x 4 utterances, phone-labelled (shared)."""
    from tests.helpers import make_audio_records

    return make_audio_records(str(tmp_path_factory.mktemp("corpus")),
                              str(tmp_path_factory.mktemp("audio_records")))
