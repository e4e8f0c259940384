#!/usr/bin/env bash
# Prepare the machine (scripts/setup.sh), then run the test suite. Arguments go to vitest:
#   bash scripts/test.sh                 everything
#   bash scripts/test.sh test/unit       one folder
set -euo pipefail

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/as-root.sh"
kfarm_as_root "$(readlink -f "${BASH_SOURCE[0]}")" "$@"
kfarm_enter_repo

KFARM_TEST_TOOLS=1 bash scripts/setup.sh
echo "[test] vitest run $*"
exec npx vitest run "$@"
