"""Export binary: a training checkpoint -> SavedModel of the encoder.

    python -m tf_contrastive.export --workdir=runs/default [--checkpoint=PREFIX]

Writes ``<export_dir or workdir/export>/<unix time>/`` with the signatures
``embed_images`` (uint8 images), ``embed_jpeg`` (encoded JPEG strings, evaluation
preprocessing in the graph) and ``serving_default`` (= ``embed_jpeg``), and
``encoder.keras`` in it: the encoder as a Keras model, for fine-tuning.
"""

from __future__ import annotations

import os

from absl import app, flags

from tf_contrastive import trainer
from tf_contrastive.core import runtime

flags.DEFINE_string("workdir", None, "Training run directory.", required=True)
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix (default: the latest).")
flags.DEFINE_string("export_dir", None, "Parent of the timestamped export directory.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    print(runtime.apply().line(), flush=True)
    cfg, model, info = trainer.restore_run(FLAGS.workdir, FLAGS.checkpoint)
    path = trainer.export_run(cfg, model, info,
                              FLAGS.export_dir or os.path.join(FLAGS.workdir, "export"))
    print(path)


if __name__ == "__main__":
    app.run(main)
