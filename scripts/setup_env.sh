#!/usr/bin/env bash
# Create or reuse .venv/ with hetmap's whole stack; idempotent and offline-safe apart from
# the package registries. aihwkit 1.2.0 has no cp311 wheel, so it is built once from source
# against torch 2.13.0 and the wheel is cached outside the repo for later set-ups and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
PY=${PYTHON:-python3.11}
STAMP=$VENV/.hetmap-setup
WHEEL_CACHE=${HETMAP_WHEEL_CACHE:-$HOME/.cache/hetmap/wheels}
AIHWKIT_VERSION=1.2.0

# Re-run only when the requirements change.
want=$(cat pyproject.toml scripts/setup_env.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c 'import hetmap, aihwkit' 2>/dev/null; then
  exit 0
fi

# Debian packages: installed when missing and we are root; otherwise say what to install.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] || return 1
  echo "[setup] apt-get install ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
# Headless Chromium renders the HTML report in the tests (they skip, saying so, without it).
apt_install chromium || echo "[setup] chromium not installed: the report screenshot test will skip" >&2

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip wheel setuptools
# The CPU build of torch lies on disk; pin it first so nothing pulls a CUDA build.
pip install torch==2.13.0

if ! "$VENV/bin/python" -c "import aihwkit, sys; sys.exit(aihwkit.__version__ != '$AIHWKIT_VERSION')" 2>/dev/null; then
  whl=$(ls "$WHEEL_CACHE"/aihwkit-"$AIHWKIT_VERSION"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$whl" ]; then
    echo "[setup] building aihwkit $AIHWKIT_VERSION from source (about 4 minutes, once)" >&2
    apt_install libopenblas-dev || {
      echo "[setup] libopenblas-dev is missing: install it (apt-get install libopenblas-dev) and rerun" >&2; exit 1; }
    # mypy provides stubgen, which aihwkit's build runs after linking.
    pip install scikit-build pybind11 cmake ninja mypy
    mkdir -p "$WHEEL_CACHE"
    tmp=$(mktemp -d)
    PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/python" -m pip --disable-pip-version-check wheel -q --no-build-isolation --no-deps \
      --no-binary aihwkit "aihwkit==$AIHWKIT_VERSION" -w "$tmp"
    mv "$tmp"/aihwkit-*.whl "$WHEEL_CACHE"/
    rm -rf "$tmp"
    whl=$(ls "$WHEEL_CACHE"/aihwkit-"$AIHWKIT_VERSION"-*.whl | head -n1)
  fi
  # Its torchvision requirement is for examples only and torchvision breaks beside this torch.
  pip install --no-deps "$whl"
fi

pip install -e ".[dev]"
echo "$want" > "$STAMP"
