#!/usr/bin/env bash
# Run the test suite (sets up .venv first when missing). Extra arguments go to pytest;
# `--all` also runs the tests marked slow.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/env.sh"
VENV="${LUMDE_VENV:-$ROOT/.venv}"
marker=(-m "not slow")
args=()
for a in "$@"; do
  if [ "$a" = "--all" ]; then marker=(); else args+=("$a"); fi
done
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "${marker[@]}" "${args[@]}"
