"""Reproduces a TensorFlow/oneDNN crash: Keras ``fit`` through the CIFAR ResNet-18 with an
odd batch size aborts the process (glibc "double free or corruption", "corrupted size
vs. prev_size", or SIGSEGV) when oneDNN is on; even batch sizes, and any batch size with
``TF_ENABLE_ONEDNN_OPTS=0``, train.

Each case runs in its own process (a crash kills it) and prints ``batch=N ok|crash``:

    python -m tools.onednn_odd_batch --batches=4,5,6,7
    TF_ENABLE_ONEDNN_OPTS=0 python -m tools.onednn_odd_batch --batches=5,7

The model is the stem and the first two stages of ``models.resnet`` (width 4, 16x16x3
inputs) with Keras's own batch norm, a pooled linear classifier, Adam: no code of this
project's training step is involved, which is why WORKSPACE.md files it as an upstream bug.
"""

from __future__ import annotations

import subprocess
import sys

from absl import app, flags

flags.DEFINE_list("batches", ["4", "5", "6", "7"], "Batch sizes to try, one process each.")
flags.DEFINE_integer("stages", 2, "ResNet stages after the stem (the crash needs >= 2).")
FLAGS = flags.FLAGS

_CASE = """
import sys
import keras
import numpy as np
from keras import layers
from tf_contrastive.models import resnet

n, stages = int(sys.argv[1]), int(sys.argv[2])
inputs = keras.Input((16, 16, 3))
x = layers.ReLU()(layers.BatchNormalization()(
    layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)))
for s in range(stages):
    x = resnet._basic_block(x, 4 * 2 ** s, 1 if s == 0 else 2, f"s{s}")
model = keras.Model(inputs, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)))
model.compile(optimizer=keras.optimizers.Adam(1e-2),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
images = np.random.default_rng(0).uniform(size=(n, 16, 16, 3)).astype("float32")
model.fit(images, np.arange(n) % 3, batch_size=n, epochs=4, shuffle=False, verbose=0)
"""


def main(argv):
    del argv
    from tf_contrastive.core import runtime

    m, st = runtime.this_machine(), runtime.tf_state()
    print(
        f"cpu={m.model!r} flags={m.relevant_flags()} tf={st['tf']} "
        f"oneDNN={'on' if st['onednn'] else 'off'}"
    )
    for batch in FLAGS.batches:
        proc = subprocess.run(
            [sys.executable, "-c", _CASE, batch, str(FLAGS.stages)], capture_output=True, text=True
        )
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        print(
            f"batch={batch} "
            + ("ok" if proc.returncode == 0 else f"crash (exit {proc.returncode}: {last[:80]})")
        )


if __name__ == "__main__":
    app.run(main)
