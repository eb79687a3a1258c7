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


# The slow tier (marker ``slow``): not run by the README's test command (pyproject.toml's
# ``-m "not slow"``), which must end within 15 minutes on a 2-core CI machine; run it with
# ``-m slow`` (or everything with ``-m ""``) before changing what these cover. Each has a
# cheaper sibling in the default tier, named after the ``#``. Besides these, the tests marked
# ``@pytest.mark.slow`` where they are defined (the wheel build, every config and flag row).
_SLOW_TIER = (
    # The shared smoke runs and everything built on them (exports of every method reloaded
    # in a fresh process, SIGKILL resumes of four runs, evaluate on a SavedModel, MoCo,
    # MirroredStrategy): ~22 min of one worker on a 2-core AVX2 EPYC.
    # # test_train_e2e.py, test_reliability.py, test_cpc_e2e.py, core/test_export.py
    "tests/e2e/",
    # # the same test for instdisc and cmc (banks, gathered negatives, the online probe)
    "tests/methods/test_replicas.py::test_two_replicas_equal_one_device[invaspread]",
    "tests/methods/test_replicas.py::test_two_replicas_equal_one_device[cpc_audio]",
    "tests/methods/test_replicas.py::test_two_replicas_equal_one_device[cpc_image]",
    "tests/methods/test_replicas.py::test_two_replicas_equal_one_device[moco]",
    "tests/methods/test_replicas.py::test_two_replicas_equal_one_device[simclr]",
    # # test_readers_e2e.py::test_image_folder_trains_through_the_binary; the readers in
    # tests/data/test_cifar.py, test_stl10.py and test_tfds_imagenet.py
    "tests/test_readers_e2e.py::test_stl10_cifar10_and_tfds_imagenet_train_through_the_trainer",
    # # test_train_e2e.py's InstDisc runs; converted records read in
    # tests/data/test_imagenet_tfrecords.py
    "tests/test_train_e2e.py::test_cmc_on_grayscale_trains_and_exports",
    "tests/test_train_e2e.py::test_cmc_lab_on_converted_imagenet_tfrecords",
    # # the mid-epoch backup and SIGKILL-in-save resumes of the same module
    "tests/test_reliability.py::test_a_damaged_newest_checkpoint_falls_back_to_the_one_before",
    # # test_cpc_e2e.py's audio run (trains, resumes, exports)
    "tests/test_cpc_e2e.py::test_cpc_image_trains_resumes_and_exports",
    # # test_labels.py::test_train_only_data_dir_trains_with_knn_off
    "tests/data/test_labels.py::test_readme_multiview_command_trains_with_knn_from_classes_json",
    # # test_multiview.py's reader tests
    "tests/data/test_multiview.py::test_three_view_cmc_trains_and_exports",
    # # test_mixed_precision.py's smoke runs under mixed precision
    "tests/methods/test_mixed_precision.py::test_cmc_runs_under_bfloat16",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = os.path.relpath(str(item.path), _ROOT)
        node = path + item.nodeid[len(item.nodeid.split("::")[0]):]
        if node.startswith(_SLOW_TIER):
            item.add_marker(pytest.mark.slow)
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
