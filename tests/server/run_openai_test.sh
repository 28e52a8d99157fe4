#!/usr/bin/env bash
# Runs a Python script of tests/server (default test_openai.py: the server driven by the
# official `openai` client) in a virtual environment under the build folder, created on first
# use (and again when requirements.txt changes) from PyPI with the pinned versions of
# requirements.txt. Arguments after the script's name go to the script.
# Usage: tests/server/run_openai_test.sh BUILD_DIR [SCRIPT.py [ARGS...]]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run_openai_test.sh BUILD_DIR [SCRIPT.py [ARGS...]]}" && pwd)
script=${2:-test_openai.py}
shift $(($# < 2 ? $# : 2))
venv="$build/server-test-venv"
stamp="$venv/requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)

# ctest runs several of these scripts at once: one creates the environment, the others wait.
exec 9> "$build/server-test-venv.lock"
flock 9
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi
exec 9>&-
exec "$venv/bin/python" "$here/$script" "$build" "$@"
