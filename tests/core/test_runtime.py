"""core/runtime.py: the per-machine oneDNN / XLA / thread choice, and that it is applied."""

import json
import os
import subprocess
import sys

import pytest

from tf_contrastive.core import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPYC = runtime.Machine("AMD EPYC 7B13", frozenset({"sse4_2", "avx2", "fma"}), 2)
XEON = runtime.Machine(
    "Intel(R) Xeon(R) Processor",
    frozenset({"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"}),
    2,
)
GRAVITON = runtime.Machine("unknown", frozenset({"asimd"}), 4, "aarch64")


def _settings(machine, **kw):
    return {"version": runtime.SETTINGS_VERSION, "machine": machine.key, **kw}


def test_onednn_is_turned_on_where_tensorflow_leaves_it_off():
    c = runtime.decide(EPYC, {})
    assert c.onednn is True
    assert c.env["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert "TF default off" in c.onednn_reason and "no avx512" in c.onednn_reason


def test_where_tensorflow_already_turns_it_on_nothing_is_set():
    c = runtime.decide(XEON, {})
    assert c.onednn is True and c.env == {}
    assert "TF default on" in c.onednn_reason and "avx512_vnni" in c.onednn_reason


@pytest.mark.parametrize("machine", [EPYC, XEON, GRAVITON])
@pytest.mark.parametrize("value,want", [("0", False), ("1", True), ("false", False)])
def test_a_user_set_onednn_variable_always_wins(machine, value, want):
    settings = _settings(machine, onednn=not want)
    c = runtime.decide(machine, {"TF_ENABLE_ONEDNN_OPTS": value}, settings)
    assert c.onednn is want and "TF_ENABLE_ONEDNN_OPTS" not in c.env
    assert "set by the user" in c.onednn_reason


def test_a_bad_onednn_value_leaves_tensorflow_its_default_and_says_so():
    c = runtime.decide(EPYC, {"TF_ENABLE_ONEDNN_OPTS": "yes"})
    assert c.onednn is None and c.env == {}
    assert "'yes'" in c.onednn_reason


def test_not_x86_and_runtime_off_leave_tensorflow_alone():
    assert runtime.decide(GRAVITON, {}).onednn is None
    c = runtime.decide(
        EPYC,
        {"TF_CONTRASTIVE_RUNTIME": "off"},
        _settings(EPYC, jit_methods=["instdisc"], intra_op_threads=1),
    )
    assert c.onednn is None and c.env == {} and not c.jit_methods
    assert "TF_CONTRASTIVE_RUNTIME=off" in c.line()


def test_a_settings_file_measured_here_decides_onednn_xla_and_threads():
    s = _settings(
        XEON,
        onednn=False,
        onednn_reason="0.9x",
        jit_methods=["cmc"],
        intra_op_threads=1,
        inter_op_threads=2,
    )
    c = runtime.decide(XEON, {}, s)
    assert c.onednn is False
    assert c.env == {
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "2",
        "TF_CONTRASTIVE_RUNTIME_SET": "TF_ENABLE_ONEDNN_OPTS,TF_NUM_INTEROP_THREADS,"
        "TF_NUM_INTRAOP_THREADS",
    }
    assert (c.intra_threads, c.inter_threads) == (1, 2)
    assert c.xla_for("cmc", False, False)[0] is True
    assert c.xla_for("instdisc", False, False)[0] is False
    on, why = c.xla_for("cmc", False, deterministic=True)
    assert on is False and "deterministic" in why
    assert c.xla_for("cmc", False, False, user_set=True) == (
        False,
        "--config.jit_compile set by the user",
    )
    assert c.xla_for("instdisc", True, False)[0] is True  # the config's True wins


def test_a_settings_file_from_another_machine_is_ignored_and_said_so():
    c = runtime.decide(
        EPYC, {}, _settings(XEON, onednn=False, jit_methods=["cmc"], intra_op_threads=1)
    )
    assert c.onednn is True and not c.jit_methods and "TF_NUM_INTRAOP_THREADS" not in c.env
    assert "another machine" in c.onednn_reason


def test_user_threads_win_over_the_settings_file():
    c = runtime.decide(
        EPYC,
        {"TF_NUM_INTRAOP_THREADS": "3"},
        _settings(EPYC, intra_op_threads=1, inter_op_threads=1),
    )
    assert c.intra_threads == 3 and "TF_NUM_INTRAOP_THREADS" not in c.env
    assert c.env["TF_NUM_INTEROP_THREADS"] == "1"


def test_variables_a_parent_process_chose_are_not_taken_for_the_users():
    parent = runtime.decide(EPYC, {})
    child = runtime.decide(EPYC, dict(parent.env))
    assert child.onednn_reason == parent.onednn_reason and child.env == parent.env


def test_the_line_says_what_and_why():
    line = runtime.decide(EPYC, {}).line("instdisc", (False, "not measured faster"))
    assert line.startswith("runtime: oneDNN on (TF default off: CPU has no avx512")
    assert "XLA off for instdisc (not measured faster)" in line
    assert "threads intra=2 inter=2" in line


def test_cpuinfo_parsing_and_machine_key():
    text = (
        "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx2 fma\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx2 fma\n"
    )
    model, flags = runtime.parse_cpuinfo(text)
    assert model == "AMD EPYC 7B13" and flags == {"fpu", "sse", "avx2", "fma"}
    assert runtime.Machine(model, flags, 2).key == "AMD EPYC 7B13|x86_64|cores=2|avx2,fma"


def test_a_damaged_settings_file_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "settings.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=f"runtime settings {bad}: unreadable"):
        runtime.load_settings(str(bad))
    bad.write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="not a version-1 settings file"):
        runtime.load_settings(str(bad))
    assert runtime.load_settings(str(tmp_path / "absent.json")) is None


def _env(tmp_path, **settings):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(_settings(runtime.this_machine(), **settings)))
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "TF_ENABLE_ONEDNN_OPTS",
            "TF_NUM_INTRAOP_THREADS",
            "TF_NUM_INTEROP_THREADS",
            "TF_CONTRASTIVE_RUNTIME",
            "TF_CONTRASTIVE_RUNTIME_SET",
        )
    }
    return dict(env, TF_CONTRASTIVE_SETTINGS=str(path), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)


def test_importing_the_package_first_applies_the_choice_to_tensorflow(tmp_path):
    # oneDNN off on this machine whatever its CPU: the opposite of nothing on an AVX2 CPU
    # and of TensorFlow's default on an AVX512-VNNI/AMX one, so it cannot pass by luck.
    script = (
        "import sys, tf_contrastive\n"
        "assert 'tensorflow' not in sys.modules\n"
        "from tf_contrastive.core import runtime\n"
        "print(runtime.tf_state()['onednn'])\n"
    )
    for onednn in (False, True):
        proc = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=_env(tmp_path, onednn=onednn),
            timeout=120,
            cwd=ROOT,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.split()[-1] == str(onednn)


def test_the_train_binary_prints_one_runtime_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tf_contrastive.train",
            "--config=configs/smoke_instdisc_digits.py",
            f"--workdir={tmp_path / 'run'}",
            "--config.train.epochs=1",
            "--config.train.steps_per_epoch=2",
            "--config.eval.knn_at_init=False",
            "--config.eval.projector_examples=0",
            "--config.train.export=False",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=_env(
            tmp_path, onednn=False, onednn_reason="0.8x of oneDNN off", jit_methods=["instdisc"]
        ),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [x for x in proc.stdout.splitlines() if x.startswith("runtime:")]
    assert len(lines) == 1, proc.stdout
    assert lines[0].startswith(
        "runtime: oneDNN off (measured here by tools.benchmark --what=settings: 0.8x of oneDNN off)"
    ), lines[0]
    assert "XLA on for instdisc (measured here" in lines[0] and "threads intra=" in lines[0]
    with open(tmp_path / "run" / "config.json") as f:
        assert json.load(f)["jit_compile"] is True  # the run really used XLA


def test_deterministic_mode_turns_off_the_onednn_the_runtime_turned_on():
    env = {}
    chosen = runtime.decide(EPYC, env)
    env.update(chosen.env)
    c = runtime.for_deterministic(chosen, EPYC, env, tf_imported=False)
    assert c.onednn is False and env["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert c.onednn_reason == runtime.DETERMINISTIC_ONEDNN
    assert c.line().startswith("runtime: oneDNN off (deterministic mode: ")
    # A child process decides afresh: the "0" is the runtime's, not the user's.
    assert "TF_ENABLE_ONEDNN_OPTS" in env[runtime._OURS].split(",")
    assert runtime.decide(EPYC, env).onednn is True


def test_deterministic_mode_keeps_tensorflows_default_and_the_users_choice():
    xeon = runtime.decide(XEON, {})
    assert runtime.for_deterministic(xeon, XEON, {}, tf_imported=False) == xeon
    env = {"TF_ENABLE_ONEDNN_OPTS": "1"}
    c = runtime.for_deterministic(runtime.decide(EPYC, env), EPYC, env, tf_imported=False)
    assert c.onednn is True and env == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert "set by the user" in c.onednn_reason and "may not be bit-identical" in c.onednn_reason
    env = {}
    late = runtime.decide(EPYC, env)
    c = runtime.for_deterministic(late, EPYC, env, tf_imported=True)
    assert c.onednn is True and env == {} and "TensorFlow was imported first" in c.onednn_reason


def test_deterministic_mode_sets_onednn_off_before_tensorflow_reads_it(tmp_path):
    # An AVX2-only machine's choice, applied in a fresh process on whatever CPU this is:
    # TensorFlow then runs with oneDNN off, even where its own default is on.
    script = (
        "import os, sys\n"
        "from tf_contrastive.core import runtime\n"
        f"m = runtime.Machine({EPYC.model!r}, frozenset({sorted(EPYC.flags)!r}), 2)\n"
        "c = runtime.decide(m, os.environ)\n"
        "os.environ.update(c.env)\n"
        "c = runtime.for_deterministic(c, m)\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print(c.onednn, runtime.tf_state()['onednn'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=_env(tmp_path), timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["False", "False"]
