# Sourced by scripts/serve and scripts/test: makes .venv and installs dockyard into it
# when pyproject.toml or constraints.txt changed since the last install.
# constraints.txt pins every package the suite installs, so a new release of a dependency
# cannot turn the suite red on a fresh clone overnight; ./scripts/lock moves the pins to the
# newest releases pyproject.toml admits (what a user's `pip install` gets) on purpose.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.dockyard-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
  touch "$stamp"
fi
