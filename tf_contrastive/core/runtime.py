"""Fast runtime defaults for this machine, decided before TensorFlow is imported.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it is imported, and on
Linux x86 turns its oneDNN kernels on by default only on CPUs with
AVX512_VNNI / AVX512_BF16 / AVX_VNNI / AMX (``DefaultOneDnnPolicy`` in
tensorflow/core/util/port.cc). On a CPU without them (e.g. an AMD EPYC with
AVX2 only) oneDNN made the InstDisc step 1.6x faster, so the default here is
oneDNN on everywhere on x86; XLA and the thread counts change only where a
measurement on this machine says so.

The measurement is ``python -m tools.benchmark --what=settings --save``: it
times each method's train step under each setting and writes a per-machine
settings file (``$TF_CONTRASTIVE_SETTINGS``, else
``$XDG_CONFIG_HOME/tf_contrastive/settings.json``, else
``~/.config/tf_contrastive/settings.json``). Its choices are used only on the
machine it was written on (same CPU model, flags and core count).

A user's own ``TF_ENABLE_ONEDNN_OPTS``, ``TF_NUM_INTRAOP_THREADS`` or
``TF_NUM_INTEROP_THREADS`` is always kept; ``TF_CONTRASTIVE_RUNTIME=off``
turns every automatic choice off. :func:`decide` is a pure function of the CPU
flags, the environment and the settings; :func:`apply` puts its choice into
``os.environ`` and is what ``import tf_contrastive`` and the binaries call.
This module never imports TensorFlow at its top.

Deterministic mode (``config.deterministic``) gets bit-identical reruns and resumes only
from deterministic kernels: where the runtime turned oneDNN on against TensorFlow's
default, :func:`for_deterministic` turns it off again and says so (its AVX2 kernels gave
two identical runs that differed in 165 of 170 checkpoint variables on a 2-core AMD EPYC
without AVX-512, while TensorFlow's default oneDNN on AVX-512 CPUs resumed bit-identically).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from collections.abc import Mapping

# The CPU features for which TensorFlow's Linux build enables oneDNN by default
# (tensorflow/core/util/port.cc, DefaultOneDnnPolicy), as /proc/cpuinfo spells them.
TF_ONEDNN_DEFAULT_FEATURES = (
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
# What benchmark lines report: the vector and matrix features that decide kernel speed.
RELEVANT_FEATURES = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
SETTINGS_VERSION = 1
_OURS = "TF_CONTRASTIVE_RUNTIME_SET"  # which variables apply() set, for child processes
_MAX_REASON_FEATURES = 3


@dataclasses.dataclass(frozen=True)
class Machine:
    """What the decision depends on: CPU model, its flags, usable cores, architecture."""

    model: str
    flags: frozenset[str]
    cores: int
    arch: str = "x86_64"

    @property
    def key(self) -> str:
        """Identifies the machine a settings file was measured on."""
        flags = ",".join(f for f in RELEVANT_FEATURES if f in self.flags)
        return f"{self.model}|{self.arch}|cores={self.cores}|{flags}"

    def relevant_flags(self) -> str:
        return ",".join(f for f in RELEVANT_FEATURES if f in self.flags) or "none"

    @property
    def tf_onednn_default(self) -> bool:
        """Whether TensorFlow itself turns oneDNN on here (x86 Linux rule)."""
        return any(f in self.flags for f in TF_ONEDNN_DEFAULT_FEATURES)


@dataclasses.dataclass(frozen=True)
class Choice:
    """The runtime settings chosen for one process, and why."""

    onednn: bool | None  # None: left to TensorFlow (not x86, or runtime off)
    onednn_reason: str
    env: dict[str, str]  # variables to set (never one the user set)
    intra_threads: int  # what TensorFlow will use (0 = unknown)
    inter_threads: int
    threads_reason: str
    jit_methods: frozenset[str]  # methods whose step measured faster with XLA here
    xla_reason: str
    applied_before_tf: bool = True

    def xla_for(
        self, method: str, configured: bool, deterministic: bool, user_set: bool = False
    ) -> tuple[bool, str]:
        """(jit_compile, why) for ``method``. A value the user set on the command line
        wins, then the config's True; else XLA where this machine measured it faster,
        never switched on automatically in deterministic mode."""
        if user_set:
            return configured, "--config.jit_compile set by the user"
        if configured:
            return True, "config.jit_compile=True"
        if method in self.jit_methods and deterministic:
            return False, f"{self.xla_reason}, but not in deterministic mode"
        return method in self.jit_methods, self.xla_reason

    def line(self, method: str | None = None, jit: tuple[bool, str] | None = None) -> str:
        """The one line a binary prints: what was chosen and why."""
        if self.onednn is None:
            dnn = f"oneDNN TensorFlow's default ({self.onednn_reason})"
        else:
            dnn = f"oneDNN {'on' if self.onednn else 'off'} ({self.onednn_reason})"
        if not self.applied_before_tf:
            dnn += " [TensorFlow was imported first: not applied]"
        if jit is None:
            xla = f"XLA for {','.join(sorted(self.jit_methods)) or 'no method'} ({self.xla_reason})"
        else:
            xla = f"XLA {'on' if jit[0] else 'off'}" + (f" for {method}" if method else "")
            xla += f" ({jit[1]})"
        threads = (
            f"threads intra={self.intra_threads or '?'} inter={self.inter_threads or '?'}"
            f" ({self.threads_reason})"
        )
        return f"runtime: {dnn}; {xla}; {threads}"


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first processor in a /proc/cpuinfo text."""
    model, flags = "unknown", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key in ("flags", "Features") and not flags:  # x86 / ARM spelling
            flags = frozenset(value.split())
    return model, flags


def this_machine(cpuinfo: str = "/proc/cpuinfo") -> Machine:
    try:
        with open(cpuinfo) as f:
            model, flags = parse_cpuinfo(f.read())
    except OSError:
        model, flags = platform.processor() or "unknown", frozenset()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 0
    return Machine(model, flags, cores, platform.machine() or "unknown")


def settings_path(env: Mapping[str, str] = os.environ) -> str:
    if env.get("TF_CONTRASTIVE_SETTINGS"):
        return env["TF_CONTRASTIVE_SETTINGS"]
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "tf_contrastive", "settings.json")


def load_settings(path: str) -> dict | None:
    """The settings file at ``path``; None if there is none. A damaged file is an
    error naming it (it was written by the benchmark, so it should parse)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            settings = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(
            f"runtime settings {path}: unreadable ({e}); rewrite it with "
            "`python -m tools.benchmark --what=settings --save` or delete it"
        ) from e
    if not isinstance(settings, dict) or settings.get("version") != SETTINGS_VERSION:
        raise ValueError(
            f"runtime settings {path}: not a version-{SETTINGS_VERSION} settings "
            "file; rewrite it with `python -m tools.benchmark --what=settings --save`"
        )
    return settings


def _env_bool(value: str) -> bool | None:
    v = value.strip().lower()
    return True if v in ("1", "true") else False if v in ("0", "false") else None


def decide(machine: Machine, env: Mapping[str, str], settings: dict | None = None) -> Choice:
    """The runtime choice for ``machine`` given the environment and a settings file.

    Pure: reads nothing but its arguments. Rules, in order:
    oneDNN — a user-set ``TF_ENABLE_ONEDNN_OPTS`` wins; then a settings file measured on
    this machine; then on x86: on (TensorFlow's own default where the CPU has
    AVX512_VNNI/BF16/AMX, else turned on here); elsewhere TensorFlow's default.
    XLA — only for methods the settings file measured faster with it.
    Threads — user-set ``TF_NUM_*_THREADS`` win, then the settings file, else
    TensorFlow's default (one per usable core).
    """
    off = env.get("TF_CONTRASTIVE_RUNTIME", "").strip().lower() in ("off", "0", "false")
    # Variables an earlier apply() set (inherited by a child process) are not the user's.
    ours = set(filter(None, env.get(_OURS, "").split(",")))
    env = {k: v for k, v in env.items() if k not in ours}
    measured = settings is not None and settings.get("machine") == machine.key
    foreign = settings is not None and not measured
    src = "measured here by tools.benchmark --what=settings"
    new_env: dict[str, str] = {}

    # oneDNN
    tf_default = machine.tf_onednn_default
    have = [f for f in TF_ONEDNN_DEFAULT_FEATURES if f in machine.flags][:_MAX_REASON_FEATURES]
    x86 = machine.arch in ("x86_64", "AMD64", "i686", "x86")
    user = env.get("TF_ENABLE_ONEDNN_OPTS")
    if user is not None and _env_bool(user) is not None:
        onednn, why = _env_bool(user), f"TF_ENABLE_ONEDNN_OPTS={user} set by the user"
    elif user is not None:
        onednn = None
        why = f"TF_ENABLE_ONEDNN_OPTS={user!r} is not 0/1/true/false: TensorFlow's default"
    elif off:
        onednn, why = None, "TF_CONTRASTIVE_RUNTIME=off"
    elif not x86:
        onednn, why = None, f"{machine.arch}: TensorFlow decides"
    elif measured and "onednn" in settings:
        onednn = bool(settings["onednn"])
        why = f"{src}: {settings.get('onednn_reason', 'faster')}"
    elif tf_default:
        onednn, why = True, f"TF default on: CPU has {','.join(have)}"
    else:
        onednn = True
        why = (
            "TF default off: CPU has no avx512_vnni/avx512_bf16/amx; 1.6x measured on a "
            "2-core AVX2 EPYC"
        )
    if foreign and onednn is not None and user is None:
        why += "; settings file is for another machine, ignored"
    if onednn is not None and user is None and onednn != tf_default:
        new_env["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn else "0"

    # XLA (per method; the config's jit_compile=True always wins)
    jit = frozenset()
    if off:
        xla_why = "TF_CONTRASTIVE_RUNTIME=off"
    elif measured and settings.get("jit_methods"):
        jit = frozenset(settings["jit_methods"])
        xla_why = f"{src}: faster for {','.join(sorted(jit))}"
    elif measured:
        xla_why = f"{src}: not faster"
    else:
        xla_why = "default: not measured faster on this machine"

    # Threads
    intra, inter, t_why = machine.cores, machine.cores, "TF default: one per usable core"
    wanted = {}
    if measured and not off:
        for key in ("intra_op_threads", "inter_op_threads"):
            if settings.get(key):
                wanted[key] = int(settings[key])
        if wanted:
            t_why = src
    for key, var in (
        ("intra_op_threads", "TF_NUM_INTRAOP_THREADS"),
        ("inter_op_threads", "TF_NUM_INTEROP_THREADS"),
    ):
        if env.get(var, "").strip().isdigit() and int(env[var]) > 0:
            wanted[key] = int(env[var])
            t_why = f"{var} set by the user"
        elif key in wanted:
            new_env[var] = str(wanted[key])
    if new_env:
        new_env[_OURS] = ",".join(sorted(new_env))
    intra = wanted.get("intra_op_threads", intra)
    inter = wanted.get("inter_op_threads", inter)
    return Choice(onednn, why, new_env, intra, inter, t_why, jit, xla_why)


_APPLIED: Choice | None = None


def apply(env: os._Environ | dict | None = None, cpuinfo: str = "/proc/cpuinfo") -> Choice:
    """Decides for this machine and sets the chosen variables in ``env`` (``os.environ``).

    Idempotent: the first call's choice is kept and returned again. If TensorFlow
    was imported before, nothing it has already read can change; the choice says so.
    """
    global _APPLIED
    if _APPLIED is not None:
        return _APPLIED
    env = os.environ if env is None else env
    machine = this_machine(cpuinfo)
    choice = decide(machine, env, load_settings(settings_path(env)))
    if "tensorflow" in sys.modules:
        choice = dataclasses.replace(choice, applied_before_tf=False)
    else:
        env.update(choice.env)  # decide() never chooses a variable the user set
    _APPLIED = choice
    return choice


DETERMINISTIC_ONEDNN = (
    "deterministic mode: oneDNN's kernels are not bit-identical run to run on a CPU where "
    "TensorFlow leaves them off"
)


def for_deterministic(
    choice: Choice | None = None,
    machine: Machine | None = None,
    env: os._Environ | dict | None = None,
    tf_imported: bool | None = None,
) -> Choice:
    """The choice for a run in deterministic mode, applied to ``env`` (``os.environ``).

    oneDNN the runtime (or a settings file) turned on where TensorFlow's own default is
    off is turned off again, before TensorFlow is imported. A ``TF_ENABLE_ONEDNN_OPTS=1``
    the user set is kept, and so is everything once TensorFlow has been imported; the
    reason then says the run may not be bit-identical. ``choice`` defaults to
    :func:`apply`'s; in your own script, call this after ``import tf_contrastive`` and
    before importing TensorFlow.
    """
    global _APPLIED
    choice = apply() if choice is None else choice
    machine = this_machine() if machine is None else machine
    env = os.environ if env is None else env
    if choice.onednn is not True or machine.tf_onednn_default:
        return choice
    if choice.env.get("TF_ENABLE_ONEDNN_OPTS") != "1":  # the user's own TF_ENABLE_ONEDNN_OPTS
        return dataclasses.replace(choice, onednn_reason=(
            f"{choice.onednn_reason}; {DETERMINISTIC_ONEDNN}, so this run may not be "
            "bit-identical (TF_ENABLE_ONEDNN_OPTS=0 would be)"))
    if tf_imported is None:
        tf_imported = "tensorflow" in sys.modules
    if not choice.applied_before_tf or tf_imported:
        return dataclasses.replace(choice, onednn_reason=(
            f"{choice.onednn_reason}; {DETERMINISTIC_ONEDNN}, but TensorFlow was imported "
            "first, so this run may not be bit-identical"))
    new_env = dict(choice.env, TF_ENABLE_ONEDNN_OPTS="0")
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"  # already listed in _OURS: children decide afresh
    choice = dataclasses.replace(
        choice, onednn=False, onednn_reason=DETERMINISTIC_ONEDNN, env=new_env)
    if _APPLIED is not None:
        _APPLIED = choice
    return choice


def tf_state() -> dict:
    """TensorFlow's effective oneDNN / XLA auto-jit / thread settings (imports TensorFlow)."""
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    return {
        "onednn": bool(_pywrap_util_port.IsMklEnabled()),
        "xla_auto_jit": bool(tf.config.optimizer.get_jit()),
        "intra": (
            tf.config.threading.get_intra_op_parallelism_threads()
            or int(os.environ.get("TF_NUM_INTRAOP_THREADS", 0) or 0)
            or this_machine().cores
        ),
        "inter": (
            tf.config.threading.get_inter_op_parallelism_threads()
            or int(os.environ.get("TF_NUM_INTEROP_THREADS", 0) or 0)
            or this_machine().cores
        ),
        "tf": tf.__version__,
    }
