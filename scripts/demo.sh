#!/usr/bin/env bash
# The main job: set up .venv when missing, then run `lumde demo` (arguments are passed on;
# the output folder defaults to ./demo_out).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/env.sh"
VENV="${LUMDE_VENV:-$ROOT/.venv}"
cd "$ROOT"
case " $* " in
  *" --out "*|*" --out="*) exec "$VENV/bin/lumde" demo "$@" ;;
  *) exec "$VENV/bin/lumde" demo --out "$ROOT/demo_out" "$@" ;;
esac
