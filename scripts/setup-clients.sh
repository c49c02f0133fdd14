#!/usr/bin/env bash
# Install the real OpenAI clients the server tests call corral with: Python (`openai`,
# `pydantic`, `jsonschema`) into a virtual environment, and Node (`openai`, `zod`,
# `zod-to-json-schema`, `ajv`) from the lock file. Versions are pinned in
# crates/corral-server/tests/clients/{python/requirements.txt,node/package-lock.json}.
# Idempotent. Usage: bash scripts/setup-clients.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
clients="$root/crates/corral-server/tests/clients"

venv="$clients/python/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup-clients: creating $venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$clients/python/requirements.txt"
echo "setup-clients: python $("$venv/bin/python" -c 'import openai, pydantic; print("openai", openai.__version__, "pydantic", pydantic.__version__)')"

(cd "$clients/node" && npm ci --no-audit --no-fund --loglevel=error)
echo "setup-clients: node $(node --version), openai $(node -p "require('$clients/node/node_modules/openai/package.json').version")"
