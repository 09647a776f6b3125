# Sourced by .ci/run, .ci/test and .ci/demo: create or reuse the project's virtualenv and install the package
# with its dev extras. The venv lives outside the clone (under ~/.cache), keyed by the Python version and the
# requirement lines of settings.ini, so reruns on one machine are quick while a fresh machine installs everything.
# Override its location with STEERABLE_NB_VENV.
set -euo pipefail
_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_py=${PYTHON:-python3}
_key=$( { "$_py" --version; grep -E '^(requirements|dev_requirements) *=' "$_top/settings.ini"; } | sha256sum | cut -c1-12)
export STEERABLE_NB_VENV=${STEERABLE_NB_VENV:-$HOME/.cache/steerable_nb/venv-$_key}
if [ ! -x "$STEERABLE_NB_VENV/bin/python" ]; then
  echo "== creating virtualenv $STEERABLE_NB_VENV"
  mkdir -p "$(dirname "$STEERABLE_NB_VENV")"
  "$_py" -m venv "$STEERABLE_NB_VENV"
  "$STEERABLE_NB_VENV/bin/python" -m pip install -q --upgrade pip
fi
export PATH="$STEERABLE_NB_VENV/bin:$PATH"
# OpenMP threads that spin while waiting make torch many times slower on a busy 2-core machine; results are unchanged
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
if ! python -m pip install -q -e "$_top[dev]" > "$STEERABLE_NB_VENV/last-install.log" 2>&1; then
  cat "$STEERABLE_NB_VENV/last-install.log"; echo "pip install -e .[dev] failed" >&2; exit 1
fi
cd "$_top"
