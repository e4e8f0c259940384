#!/usr/bin/env bash
# Build a driver's DKMS module on a kfarm farm (`kfarm serve`, docs/serve.md) from any CI
# runner with Node.js >= 20: no Docker, no kernel images, no root on the runner. The out dir
# is the one a local `kfarm build` writes: tarballs, packages, report.json, junit.xml,
# report.html, logs/. Exit status as kfarm build's: 0 built, 1 a kernel failed, 2 bad input
# (or a refused token), 3 the farm unreachable or failing.
#
#   farm-build.sh [source dir, default .]
#
#   KFARM_FARM_URL       the farm, e.g. https://farm.example.com (required)
#   KFARM_FARM_TOKEN     a token with the submit scope, from the CI's secrets (required;
#                        on the farm host: kfarm tokens create ci-runner --scope submit)
#   KFARM_PACKAGE        what npx runs kfarm from: the name your npm registry has it under, a
#                        tarball URL, or a checkout's directory (required: no "kfarm" package
#                        on the public registry is ours, so none is assumed)
#   KFARM_KERNELS        a kernel selector (default: the farm's default set)
#   KFARM_OUT            the out dir (default dist)
#   NODE_EXTRA_CA_CERTS  the farm's CA certificate (PEM), when it is a private one
set -euo pipefail

: "${KFARM_FARM_URL:?set KFARM_FARM_URL to the farm, e.g. https://farm.example.com}"
: "${KFARM_FARM_TOKEN:?set KFARM_FARM_TOKEN (a CI secret) to a token with the submit scope}"
: "${KFARM_PACKAGE:?set KFARM_PACKAGE to where npx gets kfarm (your registry name, a tarball URL or a directory)}"
export KFARM_FARM_TOKEN # read by kfarm from the environment: a token never goes on a command line

src=${1:-.}
args=(build "$src" --farm "$KFARM_FARM_URL" --out "${KFARM_OUT:-dist}")
if [[ -n ${KFARM_KERNELS:-} ]]; then args+=(--kernels "$KFARM_KERNELS"); fi

exec npx --yes --package "$KFARM_PACKAGE" -- kfarm "${args[@]}"
