"""Plots weighted-kNN top-1 against epoch for every run under a parent directory.

    python tools/plot_knn.py --runs=runs --output=runs/knn.png

Reads the ``eval/knn_top1`` scalars that training writes to
``<run>/tensorboard/train`` and draws one line per run.
"""

from __future__ import annotations

from tf_contrastive.core import runtime  # first: TensorFlow reads oneDNN/threads at import

# isort: split

import glob
import os

import tensorflow as tf
from absl import app, flags

flags.DEFINE_string("runs", "runs", "Parent directory of training run directories.")
flags.DEFINE_string("output", None, "PNG path (default: <runs>/knn_top1.png).")
flags.DEFINE_string("tag", "eval/knn_top1", "Scalar tag to plot.")
FLAGS = flags.FLAGS


def read_scalar(run_dir: str, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs of ``tag`` in a run's event files, sorted by step."""
    points = {}
    pattern = os.path.join(run_dir, "tensorboard", "**", "events.out.tfevents.*")
    for path in glob.glob(pattern, recursive=True):
        for raw in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            for v in event.summary.value:
                if v.tag == tag:
                    value = v.simple_value if v.HasField("simple_value") else float(
                        tf.make_ndarray(v.tensor))
                    points[int(event.step)] = value
    return sorted(points.items())


def plot(runs_dir: str, output: str, tag: str) -> dict[str, list]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {}
    for run in sorted(os.listdir(runs_dir)):
        pts = read_scalar(os.path.join(runs_dir, run), tag)
        if pts:
            curves[run] = pts
    if not curves:
        raise FileNotFoundError(f"--runs {runs_dir}: no run has a {tag!r} scalar")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run, pts in curves.items():
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker="o", label=run)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{tag} (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return curves


def main(argv):
    del argv
    print(runtime.apply().line(), flush=True)
    output = FLAGS.output or os.path.join(FLAGS.runs, "knn_top1.png")
    curves = plot(FLAGS.runs, output, FLAGS.tag)
    for run, pts in curves.items():
        print(f"{run}: " + ", ".join(f"epoch {s}: {100 * v:.2f}%" for s, v in pts))
    print(f"wrote {output}")


if __name__ == "__main__":
    app.run(main)
