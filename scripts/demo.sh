#!/usr/bin/env bash
# First run: prepare the machine (scripts/setup.sh), then build the example module for the
# kernels of the debian-12 image.
#   sudo bash scripts/demo.sh [out-dir]      (default out-dir: dist)
set -euo pipefail

# The build talks to the Docker engine and setup.sh needs root: when not
# root, re-run all of this with sudo, keeping the variables that change what kfarm does.
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "[demo] ERROR: run this as root (sudo is not available)" >&2; exit 1; }
  echo "[demo] not root: re-running with sudo"
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
echo "[demo] kfarm build examples/hello --out ${1:-dist}"
status=0
node bin/kfarm.js build examples/hello --out "${1:-dist}" || status=$?
exit "$status"
