"""Training binary: ``python -m tf_contrastive.train [--config=FILE|NAME] [--workdir=DIR]``.

With no flags it trains InstDisc on Fashion-MNIST (``configs/default.py``).
``--config`` takes a config file or the name of a shipped one
(``--config=instdisc_fashion_mnist``), also from an installed wheel.
Config overrides use ml_collections syntax: ``--config.train.epochs=3``. A
restarted command resumes from the newest checkpoint in the work dir.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags
from ml_collections import config_flags

from tf_contrastive.core import runtime
from tf_contrastive.core.config import ConfigNameParser, default_config_path

# TensorFlow (imported by ``trainer``) comes after the config is read: deterministic mode
# may change TF_ENABLE_ONEDNN_OPTS, which TensorFlow reads once, when it is imported.
_CONFIG = config_flags.DEFINE_config_file(
    "config", default_config_path(),
    "Config: a get_config() Python file, or a shipped config's name (instdisc_fashion_mnist).",
    lock_config=True)
flags.FLAGS["config"].parser = ConfigNameParser("config", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", os.path.join("runs", "default"),
                               "Run directory: config, checkpoints, TensorBoard, export.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    cfg = _CONFIG.value
    # The package's import already set oneDNN/threads (before TensorFlow); XLA is per method.
    choice = runtime.apply()
    if cfg.deterministic:
        choice = runtime.for_deterministic(choice)
    from tf_contrastive import trainer

    user_set = any(a.startswith(("--config.jit_compile", "-config.jit_compile"))
                   for a in sys.argv[1:])
    jit = choice.xla_for(cfg.method, cfg.jit_compile, cfg.deterministic, user_set)
    cfg.jit_compile = jit[0]
    print(choice.line(cfg.method, jit), flush=True)
    results = trainer.run(cfg, _WORKDIR.value)
    if "knn_top1" in results:
        print(f"final kNN top-1: {results['knn_top1']:.4f}"
              + (f" (untrained network: {results['knn_top1_at_init']:.4f})"
                 if "knn_top1_at_init" in results else ""))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    app.run(main)
