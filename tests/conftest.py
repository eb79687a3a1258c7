"""Test-session setup: quiet TF logs and two logical CPUs for MirroredStrategy tests.

The logical devices must be configured before TensorFlow initialises its
runtime, so this runs at import time, before any test module builds a tensor.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
