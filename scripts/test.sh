#!/usr/bin/env bash
# Prepare the machine (scripts/setup.sh), then run the test suite. Arguments go to vitest:
#   sudo bash scripts/test.sh                 everything
#   sudo bash scripts/test.sh test/unit       one folder
set -euo pipefail

# Integration tests talk to the Docker engine and setup.sh needs root: when not
# root, re-run all of this with sudo, keeping the variables that change what kfarm does.
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "[test] ERROR: run this as root (sudo is not available)" >&2; exit 1; }
  echo "[test] not root: re-running with sudo"
  keep=()
  while IFS= read -r name; do
    case $name in
      KFARM_*|REDIS_URL|DOCKER_HOST|http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY|npm_config_*|NPM_CONFIG_*)
        keep+=("$name=${!name}") ;;
    esac
  done < <(compgen -e)
  exec sudo env "${keep[@]}" bash "$(readlink -f "${BASH_SOURCE[0]}")" "$@"
fi

REPO_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$REPO_ROOT"

bash scripts/setup.sh
echo "[test] vitest run $*"
exec npx vitest run "$@"
