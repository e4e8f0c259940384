#!/usr/bin/env bash
# Prepare the machine (scripts/setup.sh), then run the test suite. Arguments go to vitest:
#   bash scripts/test.sh                 everything
#   bash scripts/test.sh test/unit       one folder
set -euo pipefail

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/as-root.sh"
kfarm_as_root "$(readlink -f "${BASH_SOURCE[0]}")" "$@"
kfarm_enter_repo

KFARM_TEST_TOOLS=1 bash scripts/setup.sh
# vitest strips types without checking them: a test that no longer type-checks against src
# would still run (and may prove nothing). tsconfig.json covers src, test, workers and bench;
# incremental, so an unchanged tree checks in a few seconds (about 18 s from nothing).
echo "[test] type check: tsc --noEmit -p tsconfig.json (src, test, workers, bench)"
mkdir -p node_modules/.cache/kfarm
checked=$SECONDS
npx tsc --noEmit -p tsconfig.json --incremental --tsBuildInfoFile node_modules/.cache/kfarm/typecheck.tsbuildinfo
echo "[test] type check: ok ($((SECONDS - checked)) s)"
# no import circle in src (issue 21): a circle makes load order decide what a module sees
# (an import still undefined at the top of the other) and ties layers that should go one way.
# madge counts type-only imports too, so types shared by two modules live in a third. A few seconds.
echo "[test] import circles: madge --circular src"
npx --no-install madge --circular --no-spinner --extensions ts --ts-config tsconfig.json src
# which folder may import which (issue 21): the layer table in .dependency-cruiser.cjs, each folder
# of src/ importing only lower layers, no circle, no folder left out of the table. A few seconds.
echo "[test] folder layers: depcruise src (.dependency-cruiser.cjs)"
checked=$SECONDS
npx --no-install depcruise src --config .dependency-cruiser.cjs --output-type err
echo "[test] folder layers: ok ($((SECONDS - checked)) s)"
# typescript-eslint with type information (floating promises, unsafe any): eslint.config.js.
echo "[test] lint: eslint ."
checked=$SECONDS
npx --no-install eslint .
echo "[test] lint: ok ($((SECONDS - checked)) s)"
echo "[test] format: prettier --check . (npm run format fixes it)"
checked=$SECONDS
npx --no-install prettier --check --log-level warn --cache --cache-strategy content .
echo "[test] format: ok ($((SECONDS - checked)) s)"
echo "[test] vitest run $*"
exec npx vitest run "$@"
