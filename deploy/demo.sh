#!/usr/bin/env bash
# Set up and run the local demo federation (see README.md for what runs today).
# With --oidc the demo also starts a development OpenID provider (Node.js, installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${BARNPLAN_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -e .
for arg in "$@"; do
  if [ "$arg" = "--oidc" ]; then
    command -v npm >/dev/null || { echo "--oidc needs Node.js and npm" >&2; exit 2; }
    dp=deploy/dev-provider
    if ! cmp -s "$dp/package-lock.json" "$dp/node_modules/.installed-lock"; then
      npm ci --prefix "$dp" --no-audit --no-fund --loglevel=error >/dev/null
      cp "$dp/package-lock.json" "$dp/node_modules/.installed-lock"
    fi
  fi
done
exec "$VENV/bin/python" -m node demo "$@"
