#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv and install what lumde_depth needs.
# Idempotent: a stamp file records the hash of the requirement files; nothing is reinstalled when
# it matches. torch is installed first and pinned so that no dependency pulls CUDA wheels.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LUMDE_VENV:-$ROOT/.venv}"
TORCH_VERSION="2.13.0"
PY="${PYTHON:-python3}"

stamp_of() {
  cat "$ROOT/requirements.txt" "$ROOT/requirements-ros.txt" "$ROOT/requirements-dev.txt" "$ROOT/setup.py" \
    | sha256sum | cut -d' ' -f1
}

want="$(stamp_of)-torch$TORCH_VERSION"
if [ -f "$VENV/.lumde-stamp" ] && [ "$(cat "$VENV/.lumde-stamp")" = "$want" ]; then
  exit 0
fi
echo "[bootstrap] setting up $VENV (first run takes a few minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" "torch==$TORCH_VERSION"
"${PIP[@]}" "torch==$TORCH_VERSION" -r "$ROOT/requirements.txt" -r "$ROOT/requirements-ros.txt" \
  -r "$ROOT/requirements-dev.txt"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"
"$VENV/bin/python" -c "import torch, rclpy, lumde_depth; assert torch.__version__.startswith('$TORCH_VERSION')"
echo "$want" > "$VENV/.lumde-stamp"
echo "[bootstrap] ready: $VENV" >&2
