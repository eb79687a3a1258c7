"""CPC on the synthetic 8-speaker espeak-ng corpus: minutes on 2 CPU cores.

Build the records first (README, "CPC on audio"):

    python -m tools.make_espeak_corpus --out_dir=data/espeak8 --utterances_per_speaker=100
    python -m tools.build_audio_tfrecords --input_dir=data/espeak8 \\
        --output_dir=data/espeak8_tfrecords --train_shards=8 --validation_shards=2 \\
        --validation_fraction=0.2

The paper's model (5 strided convs, GRU, 12 steps, 20480-sample windows,
negatives from the whole batch, Adam) with the encoder narrowed from 512 to 256
channels so a pretraining of 50 epochs fits in about 32 minutes here. Speaker probe on the
mean-pooled c_t of held-out utterances (640 training / 160 held-out windows;
give the small Keras probe enough steps)::

    python -m tf_contrastive.evaluate --workdir=RUN --protocols=knn,linear,svm \
        --probe_epochs=200
    python -m tf_contrastive.evaluate --workdir=RUN --untrained --protocols=linear,svm \
        --probe_epochs=200

Measured here (2-core Xeon, oneDNN on, XLA on for this method, nothing else
running), 50 epochs: 31 min 49 s wall (1884 s training); linear probe 96.88%
(untrained network 79.37%), LinearSVC 96.25% (untrained 69.38%), weighted kNN
89.38% (untrained 55.00%), one run. The same recipe with 20 epochs: 16 min 15 s,
linear probe 92.50%, LinearSVC 92.50%, kNN 84.38%.
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "cpc_audio"
    c.dataset.name = "audio"
    c.dataset.data_dir = "data/espeak8_tfrecords"
    c.dataset.audio_window = 20480
    c.dataset.shuffle_buffer = 1000
    c.cpc.enc_channels = 256
    c.cpc.context_units = 256
    c.cpc.prediction_steps = 12
    c.cpc.negatives = "all"
    c.optimizer.name = "adam"
    # 5x the paper's 2e-4, warmed up over an epoch and decayed: the run is short
    # (at 2e-4 constant, 20 epochs gave an 88.75% speaker probe, still improving).
    c.optimizer.learning_rate = 1e-3
    c.optimizer.reference_batch = 0
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "cosine"
    c.optimizer.warmup_epochs = 1
    c.train.batch_size = 16
    c.train.epochs = 50  # 20: linear probe 92.50%; 50: 96.88%
    c.train.steps_per_epoch = 40
    c.eval.knn_k = 20
    c.eval.knn_sigma = 0.1
    c.eval.every_epochs = 5
    c.eval.batch_size = 64
    c.eval.projector_examples = 160
    return c
