"""Two replicas (MirroredStrategy on two logical CPUs) train like one device.

With synchronized batch norm and the same global batch, every method's steps
give the same losses, and InstDisc/CMC identical banks on both replicas, equal
to the one-device bank: negatives and bank writes are gathered across
replicas, the noise ids are drawn for the global batch, and each replica's
loss is its share of the global mean. CMC's and CPC's models carry an online linear
probe (``methods/online_probe.py``, their ``probe_features``), whose classifier must
agree too (with unlabelled rows spread unevenly over the replicas).

The tolerance is float32 rounding (losses 1e-5 relative): the split of the
batch changes only summation orders. Two choices keep it that tight:
``SyncBatchNormalization`` accumulates its statistics in float64 (with Keras's
one-pass float32 form the weights drifted 3e-3 to 8e-3 apart in three steps;
two passes in float32 still left InstDisc's loss 1.2e-5 off),
and the learning rate is 0.01: at 0.05 this width-4 network is chaotic (a
1e-6 relative nudge of one device's own weights moves CMC's weights by 6e-3
after one step), so no two runs that differ in rounding could agree.

With TensorFlow's oneDNN kernels (on by default on CPUs with AVX512_VNNI/AMX, and
chosen by ``core.runtime`` elsewhere on x86) a half batch takes other kernel
blockings than the whole one: on a 2-core Xeon with AMX, InvaSpread's weights
came out 3.9e-5 apart after three steps (losses still within 1e-5), the same
figure on every run; with oneDNN off they agree within 2e-5. The weight and bank
tolerance is 2e-5 with Eigen's kernels and 5e-5 with oneDNN's.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_contrastive.core import runtime, views
from tf_contrastive.core.config import base_config
from tf_contrastive.data.pipeline import DatasetInfo
from tf_contrastive.methods import get_method

B, STEPS, H = 16, 3, 16
ATOL = 5e-5 if runtime.tf_state()["onednn"] else 2e-5
LR = 0.01
WAVE = 256  # samples: 32 frames of the 8x-downsampling test encoder
INFO = DatasetInfo(num_train=40, num_eval=0, num_classes=3, image_shape=(H, H, 1),
                   mean=(0.5,), std=(0.25,))


def _cfg(method):
    cfg = base_config()
    cfg.method = method
    cfg.model.width = 4
    cfg.model.embedding_dim = 8
    cfg.model.sync_bn = True
    cfg.model.head = "mlp" if method == "simclr" else "linear"
    cfg.instdisc.num_negatives = 16
    cfg.cmc.num_negatives = 16
    cfg.cmc.views = "intensity_gradient"
    cfg.cpc.enc_channels, cfg.cpc.context_units, cfg.cpc.prediction_steps = 8, 8, 3
    cfg.cpc.enc_strides, cfg.cpc.enc_kernels = (2, 2, 2), (4, 4, 4)
    cfg.cpc_image.patch_size, cfg.cpc_image.patch_stride = 8, 4
    cfg.cpc_image.feature_dim, cfg.cpc_image.context_layers = 8, 1
    cfg.cpc_image.directions = 4
    cfg.moco.queue_size = 40  # 3 steps of 16 keys: the third wraps
    cfg.moco.momentum = 0.9
    return cfg


def _batches(view_spec, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for step in range(STEPS):
        x = rng.random((B, H, H, 1)).astype(np.float32)
        labels = rng.integers(-1, 3, B).astype(np.int32)  # -1: unlabelled, probe-masked
        b = {"index": np.arange(step * B, (step + 1) * B, dtype=np.int32) % 40,
             "label": labels}
        if view_spec.source == views.WAVEFORM:
            b = {"waveform": rng.uniform(-1, 1, (B, WAVE)).astype(np.float32), "label": labels}
        elif view_spec.patches:  # a 3x3 grid of 8x8 patches per image
            b = {"patches": rng.random((B, 3, 3, 8, 8, 1)).astype(np.float32), "label": labels}
        elif view_spec == views.SINGLE:
            b["image"] = x
        elif view_spec == views.PAIR:
            b["view_0"], b["view_1"] = x, np.flip(x, 2).copy()
        else:
            b["view_l"] = x
            b["view_ab"] = np.concatenate([x, 1 - x], axis=-1)
        out.append(b)
    return out


# Methods whose probe_features is their own or finds an input of variable length (the
# default on images runs in the shared e2e ``mirrored`` run).
_PROBED = ("cmc", "cpc_audio", "cpc_image")


def _build(cfg, strategy):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = get_method(cfg.method).build(cfg, INFO)
        if cfg.method in _PROBED:
            model.attach_online_probe(INFO.num_classes)
        model.compile(optimizer=keras.optimizers.SGD(LR, momentum=0.9))
        model.optimizer.build(model.trainable_variables)
    return model


def _state(model):
    probe = model.online_probe.classifier.weights if model.online_probe else []
    weights = [np.array(v.numpy()) for v in [*model.trainable_variables, *probe]]
    return weights, model.monitored_banks()


# State outside the optimizer and the banks: MoCo's key queue, its pointer and its key
# encoder, whose copies must be identical on both replicas and equal to one device's.
_EXTRA = {"moco": lambda m: [m.queue.keys, m.queue.pointer, *m.key_encoder.weights]}


@pytest.mark.parametrize(
    "method", ["instdisc", "cmc", "invaspread", "cpc_audio", "cpc_image", "moco", "simclr"]
)
def test_two_replicas_equal_one_device(method, mirrored):
    cfg = _cfg(method)
    batches = _batches(get_method(method).views(cfg, INFO))
    single = _build(cfg, tf.distribute.get_strategy())
    double = _build(cfg, mirrored)
    step1 = tf.function(single.train_step)

    @tf.function
    def step2(dist):
        return mirrored.run(double.train_step, args=(dist,))

    for b in batches:
        def local(ctx, b=b):
            r = ctx.replica_id_in_sync_group
            return {k: v[r * B // 2:(r + 1) * B // 2] for k, v in b.items()}
        for m in (single, double):
            m.loss_tracker.reset_state()
        step1({k: tf.constant(v) for k, v in b.items()})
        step2(mirrored.experimental_distribute_values_from_function(local))
        # Read in cross-replica context: the trackers' sums over replicas.
        np.testing.assert_allclose(float(double.loss_tracker.result()),
                                   float(single.loss_tracker.result()), rtol=1e-5)

    w1, banks1 = _state(single)
    w2, banks2 = _state(double)
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_allclose(a, b, atol=ATOL)
    for bank1, bank2 in zip(banks1, banks2, strict=True):
        copies = [v.numpy() for v in bank2.features.value.values]
        np.testing.assert_array_equal(copies[0], copies[1])
        np.testing.assert_allclose(bank1.features.numpy(), copies[0], atol=ATOL)
    extra = _EXTRA.get(method, lambda m: [])
    for var1, var2 in zip(extra(single), extra(double), strict=True):
        copies = [v.numpy() for v in var2.value.values]
        np.testing.assert_array_equal(copies[0], copies[1], err_msg=var2.path)
        np.testing.assert_allclose(var1.numpy(), copies[0], atol=ATOL, err_msg=var2.path)


@pytest.mark.parametrize("method", ["instdisc", "cmc"])
def test_a_warm_start_step_that_leaves_a_replica_no_rows_fills_the_bank(method, mirrored):
    # The last evaluation batch can be smaller than the replicas' share: replica 1 gets no
    # rows here. It must still join the bank update (its kernels fail on a batch of 0).
    cfg = _cfg(method)
    rng = np.random.default_rng(1)
    batch = {"image": rng.random((5, H, H, 1)).astype(np.float32),
             "index": np.array([3, 7, 11, 19, 23], np.int32),
             "label": np.array([0, 1, 2, 0, 1], np.int32)}
    single = _build(cfg, tf.distribute.get_strategy())
    double = _build(cfg, mirrored)
    single.fill_bank_step({k: tf.constant(v) for k, v in batch.items()})

    def local(ctx):
        return {k: v if ctx.replica_id_in_sync_group == 0 else v[:0] for k, v in batch.items()}

    @tf.function
    def fill(dist):
        return mirrored.run(double.fill_bank_step, args=(dist,))

    fill(mirrored.experimental_distribute_values_from_function(local))
    for bank1, bank2 in zip(_state(single)[1], _state(double)[1], strict=True):
        copies = [v.numpy() for v in bank2.features.value.values]
        np.testing.assert_array_equal(copies[0], copies[1])
        np.testing.assert_allclose(bank1.features.numpy(), copies[0], atol=ATOL)
