#!/usr/bin/env bash
# First run: prepare the machine (scripts/setup.sh), then build the example module for the
# kernels of the debian-12 image.
#   bash scripts/demo.sh [out-dir]      (default out-dir: dist)
set -euo pipefail

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/as-root.sh"
kfarm_as_root "$(readlink -f "${BASH_SOURCE[0]}")" "$@"
kfarm_enter_repo

bash scripts/setup.sh
echo "[demo] kfarm build examples/hello --out ${1:-dist}"
exec node bin/kfarm.js build examples/hello --out "${1:-dist}"
