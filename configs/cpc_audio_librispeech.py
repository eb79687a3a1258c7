"""CPC on LibriSpeech train-clean-100 as in van den Oord et al. (2018).

Convert first (see README): tools/build_audio_tfrecords.py writes the shards
and speakers.json into --config.dataset.data_dir. 20480-sample windows (1.28
s at 16 kHz, 128 frames), g_enc 5 strided convs of 512 channels, GRU 256,
12 prediction steps, negatives from the whole minibatch, Adam 2e-4. The paper
used 8 GPUs with 8 windows each; on one machine with several GPUs use
--config.strategy=mirrored (negatives then come from each replica's 8).
"""

from tf_contrastive.core.config import base_config


def get_config():
    c = base_config()
    c.method = "cpc_audio"
    c.dataset.name = "audio"
    c.dataset.data_dir = "data/librispeech_100h_tfrecords"
    c.dataset.audio_window = 20480
    c.cpc.enc_channels = 512
    c.cpc.context_units = 256
    c.cpc.prediction_steps = 12
    c.cpc.negatives = "all"
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 2e-4
    c.optimizer.reference_batch = 0
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "constant"
    c.train.batch_size = 64
    c.train.epochs = 200
    c.train.steps_per_epoch = 0  # one pass over the utterances (a window each)
    c.eval.knn_k = 20
    c.eval.knn_sigma = 0.1
    c.eval.every_epochs = 10
    c.eval.batch_size = 64
    c.eval.projector_examples = 500
    return c
