"""The evaluation binary's success paths on an export and on the untrained network.

(On a checkpoint: tests/test_train_e2e.py and tests/test_cpc_e2e.py.)
"""

import json

from tests.helpers import run_module


def _evaluate(tmp_path, *flags):
    out = tmp_path / "eval.json"
    proc = run_module("tf_contrastive.evaluate", "--protocols=knn", f"--output={out}", *flags)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "knn_top1" in proc.stdout and f"results written to {out}" in proc.stdout
    with open(out) as f:
        return json.load(f)


def test_evaluate_saved_model_gives_the_knn_figure_of_its_checkpoint(smoke_runs, tmp_path):
    run = smoke_runs["invaspread"]
    export = run["results"]["export"]  # written with ckpt-2, the run's last checkpoint
    ev = _evaluate(tmp_path, f"--saved_model={export}", f"--workdir={run['workdir']}")
    assert ev["source"] == export
    assert ev["test_examples"] == 100 and ev["train_examples"] == 400
    # The trainer's final figure evaluates the same weights with the same kNN code.
    assert ev["knn_top1"] == run["results"]["knn_top1"]
    assert ev["knn_top5"] == run["results"]["knn_top5"]


def test_evaluate_untrained_gives_the_runs_figure_at_initialisation(smoke_runs, tmp_path):
    run = smoke_runs["cpc_image"]
    ev = _evaluate(tmp_path, f"--workdir={run['workdir']}", "--untrained")
    assert ev["source"] == "untrained"
    # The run scored its seeded initial network before training (no bank: features
    # recomputed, as here); the trained network scores something else.
    assert ev["knn_top1"] == run["results"]["knn_top1_at_init"]
    assert ev["knn_top5"] == run["results"]["knn_top5_at_init"]
    assert (ev["knn_top1"], ev["knn_top5"]) != (
        run["results"]["knn_top1"],
        run["results"]["knn_top5"],
    )
