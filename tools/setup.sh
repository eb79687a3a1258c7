#!/usr/bin/env bash
# Installs everything tf_contrastive needs on a Debian machine: the Fashion-MNIST
# package (the default job's data) and espeak-ng (test audio), then the Python stack.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if [ ! -d /usr/share/datasets/fashion-mnist ] || ! command -v espeak-ng >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq dataset-fashion-mnist espeak-ng >/dev/null
  fi
fi
python -m pip install -q -r requirements.txt
python -m pip install -q --no-deps -e .
