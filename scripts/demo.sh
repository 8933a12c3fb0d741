#!/usr/bin/env bash
# The main job: set up .venv when missing, then run `lumde demo` (arguments are passed on).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/env.sh"
VENV="${LUMDE_VENV:-$ROOT/.venv}"
cd "$ROOT"
exec "$VENV/bin/lumde" demo "$@"
