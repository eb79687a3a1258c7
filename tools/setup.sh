#!/usr/bin/env bash
# Installs everything tf_contrastive needs on a Debian machine: the Fashion-MNIST
# package (the default job's data) and espeak-ng (test audio), then the Python stack
# into the first python/python3 on PATH, or into a venv (.venv) when that interpreter
# is externally managed (PEP 668, e.g. Debian's /usr/bin/python3) or not pip-writable.
# Run the project with tools/python, which picks the same interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 0
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "$@" >/dev/null
}
if [ ! -d /usr/share/datasets/fashion-mnist ] || ! command -v espeak-ng >/dev/null 2>&1; then
  apt_install dataset-fashion-mnist espeak-ng
fi
if [ ! -x .venv/bin/python ]; then
  base="$(command -v python || command -v python3 || true)"
  if [ -z "$base" ]; then
    apt_install python3 python3-venv
    base="$(command -v python3)"
  fi
  # Exit 0: pip may install into this interpreter (a venv already, or a writable,
  # not externally managed one).
  if ! "$base" - <<'PY'
import importlib.util, os, sys, sysconfig
if sys.prefix != sys.base_prefix:
    sys.exit(0)
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
site = sysconfig.get_path("purelib")
writable = os.access(site if os.path.isdir(site) else os.path.dirname(site), os.W_OK)
sys.exit(1 if managed or not writable or importlib.util.find_spec("pip") is None else 0)
PY
  then
    if ! "$base" -c "import ensurepip, venv" >/dev/null 2>&1; then
      apt_install python3-venv  # Debian ships venv's pip bootstrap separately
    fi
    echo "setup.sh: $base is externally managed or not pip-writable; installing into .venv"
    "$base" -m venv .venv
  fi
fi
./tools/python -m pip install -q -r requirements.txt
./tools/python -m pip install -q --no-deps -e .
