#!/usr/bin/env bash
# The full matrix (issue 13): every amd64 and arm64 kernel the Debian archive offers for
# debian-11, debian-12 and debian-13, kept by `kfarm images sync`, then examples/hello built
# for all of them in one `kfarm build --kernels all`, then checked: every kernel built, every
# .ko's vermagic names its kernel (aarch64 for arm64), and every per-kernel tarball ingested by
# the real dkms of its own release (bullseye 2.8.x, bookworm 3.0.10, trixie 3.2.x) in a
# container of that release. Prints the time of each step and the disk the images take.
#
#   bash scripts/full-matrix.sh [out-dir]        (default: /tmp/kfarm-full-matrix)
#
# About 240 kernels: the first run syncs them all (tens of minutes, ~17 GB), later runs add
# only new errata kernels. Not part of `.ci/run`, which checks a cross-section
# (test/e2e/matrix-cross-section.test.ts).
set -euo pipefail

source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/as-root.sh"
kfarm_as_root "$(readlink -f "${BASH_SOURCE[0]}")" "$@"
kfarm_enter_repo

out=$(readlink -f "${1:-/tmp/kfarm-full-matrix}")
mkdir -p "$out"
say() { printf '[matrix] %s\n' "$*"; }

bash scripts/setup.sh

step=$SECONDS
say "kfarm images sync debian-11 debian-12 debian-13 --arch amd64,arm64"
sync_rc=0
node bin/kfarm.js images sync debian-11 debian-12 debian-13 --arch amd64,arm64 || sync_rc=$?
sync_s=$((SECONDS - step))
node bin/kfarm.js images list >"$out/images.txt" 2>"$out/images-summary.txt"
kernels=$(node bin/kfarm.js kernels 2>/dev/null | grep -c ' released$' || true)

step=$SECONDS
say "kfarm build examples/hello --kernels 'all,!stage:pre-release' --out $out/hello"
rm -rf "$out/hello"
build_rc=0
node bin/kfarm.js build examples/hello --kernels 'all,!stage:pre-release' --out "$out/hello" || build_rc=$?
build_s=$((SECONDS - step))

step=$SECONDS
say "checking vermagic and ingesting every per-kernel tarball with its release's dkms"
check_rc=0
KFARM_MATRIX_OUT="$out/hello" npx vitest run --config test/matrix/vitest.config.ts || check_rc=$?
check_s=$((SECONDS - step))

say "sync: ${sync_s} s (exit $sync_rc); build: ${build_s} s (exit $build_rc); vermagic + dkms ingest: ${check_s} s (exit $check_rc)"
say "kernels held: ${kernels}; images: $(tail -n 1 "$out/images-summary.txt")"
sed 's/^/[matrix]   /' "$out/images-summary.txt"
[[ $sync_rc -eq 0 && $build_rc -eq 0 && $check_rc -eq 0 ]]
