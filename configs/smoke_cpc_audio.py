"""Tiny CPC audio run for tests: a narrow encoder on short windows.

Pass the records with --config.dataset.data_dir (tests write an espeak-ng
corpus through tools/build_audio_tfrecords.py).
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "cpc_audio"
    c.dataset.name = "audio"
    c.dataset.audio_window = 2560  # 16 frames
    c.cpc.enc_channels = 16
    c.cpc.context_units = 8
    c.cpc.prediction_steps = 3
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.reference_batch = 0
    c.train.batch_size = 4
    c.train.epochs = 2
    c.train.steps_per_epoch = 2  # 8 windows: within one pass over 9 utterances
    c.train.log_every_steps = 1
    c.eval.knn_k = 3
    c.eval.batch_size = 8
    c.eval.projector_examples = 8
    return c
