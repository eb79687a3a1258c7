"""Mixed precision: bfloat16 and float16 (loss-scaled) steps train; banks stay float32."""

import keras
import numpy as np
import pytest

from tests.helpers import smoke_cfg
from tf_contrastive import trainer


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_smoke_run_under_mixed_precision(policy, tmp_path):
    _check_run(smoke_cfg(), policy, tmp_path)


def test_cmc_runs_under_bfloat16(tmp_path):
    """The view split (colour conversion, Sobel) stays float32 in front of bf16 encoders."""
    model = _check_run(smoke_cfg("smoke_cmc_digits"), "mixed_bfloat16", tmp_path)
    split = model.encoder.get_layer("view_split")
    assert split.compute_dtype == "float32"
    assert all(b.features.dtype == "float32" for b in model.banks)


def _check_run(cfg, policy, tmp_path):
    cfg.mixed_precision = policy
    cfg.train.epochs = 1
    cfg.eval.projector_examples = 0
    cfg.train.export = False
    try:
        results, model = trainer.run(cfg, str(tmp_path), verbose=0, return_model=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(results["final_loss"])
    assert model.bank.features.dtype == "float32" and model.encoder.output.dtype == "float32"
    for encoder in getattr(model, "view_encoders", [model.encoder]):
        assert encoder.get_layer("backbone").compute_dtype == policy.split("_")[1]
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    return model
