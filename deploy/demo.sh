#!/usr/bin/env bash
# Set up and run the local demo federation (see README.md for what runs today).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BARNPLAN_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -e .
exec "$VENV/bin/python" -m node demo "$@"
