#!/bin/bash
# kfarm's module signer, run in a fresh container of the kernel's image (see sign-script.ts).
# `probe <kver>` prints where the kernel's sign-file is and its hash; `sign <kver>` reads a tar
# on stdin (key.pem, cert.pem, in/<module files>) into its tmpfs, signs each module with the
# kernel's own sign-file and CONFIG_MODULE_SIG_HASH, compresses it again as kfarm's driver
# does (so the name stays), and writes a tar of the signed files on stdout. stdout carries
# only that tar; everything else goes to stderr, which never sees the key.
set -euo pipefail
umask 077
exec 3>&1 1>&2
mode=$1 kver=$2
build=/lib/modules/$kver/build

# DKMS's order: the kernel's own kbuild first (through the headers' scripts link, which finds
# trixie's per-ABI linux-kbuild too), then linux-kbuild-<major.minor>
find_sign_file() {
    local c
    for c in "$build/scripts/sign-file" "/usr/lib/linux-kbuild-${kver%.*}/scripts/sign-file"; do
        if [[ -f $c && -x $c ]]; then echo "$c"; return 0; fi
    done
    return 1
}
# CONFIG_MODULE_SIG_HASH as dkms 3.2 reads it: auto.conf, then .config
sig_hash() {
    local f h
    for f in "$build/include/config/auto.conf" "$build/.config"; do
        [[ -r $f ]] || continue
        h=$(sed -n 's/^CONFIG_MODULE_SIG_HASH="\([A-Za-z0-9-]*\)"$/\1/p' "$f" | head -n 1)
        if [[ -n $h ]]; then echo "$h"; return 0; fi
    done
    return 1
}

sign_file=$(find_sign_file) || { echo "kfarm-sign: no sign-file for $kver (looked for $build/scripts/sign-file and /usr/lib/linux-kbuild-${kver%.*}/scripts/sign-file)"; exit 3; }
hash=$(sig_hash) || { echo "kfarm-sign: $kver's config sets no CONFIG_MODULE_SIG_HASH ($build/.config)"; exit 4; }

if [[ $mode == probe ]]; then
    # without arguments sign-file prints its usage; 126 or 127 mean it cannot run here
    rc=0; "$sign_file" >/dev/null 2>&1 || rc=$?
    if ((rc == 126 || rc == 127)); then echo "kfarm-sign: $sign_file cannot run in this image (status $rc)"; exit 5; fi
    # can the kernel verify an ECDSA signature (CONFIG_CRYPTO_ECDSA, built in since 5.13 where set)? y, m or n
    ecdsa=$(sed -n 's/^CONFIG_CRYPTO_ECDSA=\([ym]\)$/\1/p' -- "$build/include/config/auto.conf" "$build/.config" 2>/dev/null | head -n 1) || true
    printf 'sign_file=%s\nhash=%s\necdsa=%s\n' "$sign_file" "$hash" "${ecdsa:-n}" >&3
    exit 0
fi

# an earlier signature (a module signed twice) is cut off first: the kernel checks only the last
strip_signature() {
    local f=$1 size len
    tail -c 28 -- "$f" | cmp -s - <(printf '~Module signature appended~\n') || return 0
    size=$(stat -c %s -- "$f")
    len=$(tail -c 32 -- "$f" | head -c 4 | od -An -tu1 | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
    truncate -s $((size - 40 - len)) -- "$f"
    echo "kfarm-sign: $2 was signed already; that signature is replaced"
}

cd /kfarm-sign
tar -x -f - --no-same-owner --no-same-permissions
[[ -f key.pem && -f cert.pem && -d in ]] || { echo "kfarm-sign: the input lacks key.pem, cert.pem or in/"; exit 6; }
mkdir out work
names=()
for f in in/*; do
    name=${f#in/}
    case $name in
        *.ko.xz) xz -dc -- "$f" >work/m.ko ;;
        *.ko.gz) gzip -dc -- "$f" >work/m.ko ;;
        *.ko.zst) zstd -q -dc -- "$f" >work/m.ko ;;
        *.ko) cat -- "$f" >work/m.ko ;;
        *) echo "kfarm-sign: unexpected input $name"; exit 6 ;;
    esac
    strip_signature work/m.ko "$name"
    "$sign_file" "$hash" key.pem cert.pem work/m.ko work/s.ko
    # compressed as kfarm's driver compresses (xz with CRC32: the kernel refuses CRC64)
    case $name in
        *.ko.xz) xz --check=crc32 --lzma2=dict=1MiB -c -- work/s.ko >"out/$name" ;;
        *.ko.gz) gzip -9 -n -c -- work/s.ko >"out/$name" ;;
        *.ko.zst) zstd -q -T0 -c -- work/s.ko >"out/$name" ;;
        *.ko) mv -- work/s.ko "out/$name" ;;
    esac
    rm -f -- work/m.ko work/s.ko
    names+=("$name")
    echo "kfarm-sign: signed $name for $kver with $sign_file $hash"
done
rm -f key.pem
tar -c -f - -C out --owner=0 --group=0 --numeric-owner -- "${names[@]}" >&3
