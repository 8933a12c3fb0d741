#!/usr/bin/env bash
# Run the test suite (sets up .venv first when missing). Extra arguments go to pytest;
# `--all` also runs the tests marked slow.
#
# Then the tests marked real_libs (those that exercise the ROS libraries' API: compat, sync, node,
# bag process, demo, reliability) run again once per folder of ../shared/ros_real (the real ROS 2
# Python libraries, e.g. jazzy_2024, message_filters_2026_01), that folder in front of the venv on
# PYTHONPATH; skipped, with the reason printed, where the folder is absent. LUMDE_ROS_REAL names another
# folder; LUMDE_ROS_REAL=none skips these runs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/env.sh"
VENV="${LUMDE_VENV:-$ROOT/.venv}"
marker="not slow"
args=()
for a in "$@"; do
  if [ "$a" = "--all" ]; then marker=""; else args+=("$a"); fi
done
cd "$ROOT"
status=0
"$VENV/bin/python" -m pytest ${marker:+-m "$marker"} "${args[@]}" || status=$?

REAL="${LUMDE_ROS_REAL:-$ROOT/../shared/ros_real}"
if [ "$REAL" = none ]; then
  echo "[test] real ROS 2 libraries: skipped (LUMDE_ROS_REAL=none)"
elif [ ! -d "$REAL" ]; then
  echo "[test] real ROS 2 libraries: skipped, $REAL not found (set LUMDE_ROS_REAL to a ros_real folder)"
else
  for folder in "$REAL"/*/; do
    folder="${folder%/}"
    compgen -G "$folder/*/__init__.py" > /dev/null || continue   # licenses/ and the like
    echo "[test] real ROS 2 libraries: $(basename "$folder") in front of the venv"
    PYTHONPATH="$folder${PYTHONPATH:+:$PYTHONPATH}" LUMDE_ROS_REAL_UNDER_TEST="$folder" \
      "$VENV/bin/python" -m pytest -m "real_libs${marker:+ and $marker}" "${args[@]}" || status=$?
  done
fi
exit $status
