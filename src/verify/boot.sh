#!/bin/bash
# kfarm load verification, inside the verify container (no network, read-only root, /work a tmpfs).
# stdin: a tar with kernel.deb and mods/<path below /lib/modules/$KVER>; env: KVER, GUEST_ARCH
# (x86_64|aarch64), ACCEL (kvm|tcg), NONCE, MEM_MB, BOOT_TIMEOUT (s), CMDLINE_EXTRA.
# stderr: this script's steps ("kfarm-verify: ...") and then the guest's serial console.
# stdout: one status line of this script's, which the guest cannot write to.
set -euo pipefail
W=/work
say() { echo "kfarm-verify: $*" >&2; }
status() { echo "status=$1 qemu_exit=${2:-} wall_ms=${3:-}"; exit 0; }

mkdir -p "$W/in" "$W/deb" "$W/initrd"
tar -x -C "$W/in" --no-same-owner --no-same-permissions --no-overwrite-dir
[ -f "$W/in/kernel.deb" ] || { say "no kernel.deb in the input"; status no-kernel-image; }

# Only the kernel and its module tree, by name; GNU tar refuses absolute and .. member paths.
say "extracting vmlinuz-$KVER and /lib/modules/$KVER from the kernel package"
dpkg-deb --fsys-tarfile "$W/in/kernel.deb" \
  | tar -x -C "$W/deb" --no-same-owner --no-same-permissions --wildcards \
      "./boot/vmlinuz-$KVER" "./lib/modules/$KVER/*" "./usr/lib/modules/$KVER/*" 2>/dev/null || true
rm -f "$W/in/kernel.deb"
if [ -d "$W/deb/usr/lib/modules/$KVER" ] && [ ! -d "$W/deb/lib/modules/$KVER" ]; then
  mkdir -p "$W/deb/lib/modules" && mv "$W/deb/usr/lib/modules/$KVER" "$W/deb/lib/modules/$KVER"
fi
VMLINUZ="$W/deb/boot/vmlinuz-$KVER"
MODDIR="$W/deb/lib/modules/$KVER"
# both, else refused (SC2015: the A && B || C is meant)
# shellcheck disable=SC2015
[ -f "$VMLINUZ" ] && [ ! -L "$VMLINUZ" ] || { say "the package holds no regular file boot/vmlinuz-$KVER"; status no-kernel-image; }
[ -d "$MODDIR" ] || { say "the package holds no lib/modules/$KVER"; status no-kernel-image; }

# The built modules where dkms installs them, then depmod over the whole tree.
BUILT=()
while IFS= read -r -d '' f; do
  rel="${f#"$W/in/mods/"}"
  mkdir -p "$MODDIR/$(dirname "$rel")"
  cp "$f" "$MODDIR/$rel"
  BUILT+=("$rel")
done < <(find "$W/in/mods" -type f -print0 | sort -z)
[ "${#BUILT[@]}" -gt 0 ] || { say "no modules to load"; status no-modules; }
depmod -b "$W/deb" "$KVER" 2>&1 | sed 's/^/kfarm-verify: depmod: /' >&2 || true

# Load order: modprobe --show-depends gives each module's in-tree dependencies first.
declare -A seen=()
ORDER=()
for rel in "${BUILT[@]}"; do
  name="$(basename "$rel")"; name="${name%%.ko*}"
  deps="$(modprobe -d "$W/deb" -S "$KVER" --show-depends "$name" 2>/dev/null | sed -n 's/^insmod \([^ ]*\).*/\1/p')" || deps=""
  [ -n "$deps" ] || deps="$MODDIR/$rel"
  while IFS= read -r p; do
    r="${p#"$MODDIR/"}"
    # a new one, else the next (SC2015: the A && B || C is meant)
    # shellcheck disable=SC2015
    [ -n "$r" ] && [ -z "${seen[$r]:-}" ] || continue
    seen[$r]=1
    ORDER+=("$r")
  done <<<"$deps"
done

# The initramfs: static busybox as init and tools, the modules (decompressed: busybox insmod
# hands the kernel plain ELF), the order, and the init script.
R="$W/initrd"
mkdir -p "$R/bin" "$R/proc" "$R/sys" "$R/dev" "$R/kfarm" "$R/lib/modules/$KVER"
case "$GUEST_ARCH" in
  aarch64) cp /usr/lib/kfarm/busybox-aarch64 "$R/bin/busybox" ;;
  *) cp /bin/busybox "$R/bin/busybox" ;;
esac
: > "$R/kfarm/load.list"
for r in "${ORDER[@]}"; do
  out="$R/lib/modules/$KVER/${r%.xz}"; out="${out%.zst}"; out="${out%.gz}"
  mkdir -p "$(dirname "$out")"
  case "$r" in
    *.xz) xz -dc "$MODDIR/$r" > "$out" ;;
    *.zst) zstd -qdc "$MODDIR/$r" > "$out" ;;
    *.gz) gzip -dc "$MODDIR/$r" > "$out" ;;
    *) cp "$MODDIR/$r" "$out" ;;
  esac
  echo "${out#"$R/lib/modules/$KVER/"}" >> "$R/kfarm/load.list"
done
cp "$MODDIR"/modules.order "$MODDIR"/modules.builtin "$R/lib/modules/$KVER/" 2>/dev/null || true
say "load order: $(tr '\n' ' ' < "$R/kfarm/load.list")"
cat > "$R/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
M="@@kfarm-$NONCE"
up() { cut -d' ' -f1 /proc/uptime; }
echo "\$M boot \$(up)"
while read -r m; do
  echo "\$M insmod \$m \$(up)"
  if insmod "/lib/modules/$KVER/\$m"; then r=0; else r=\$?; fi
  echo "\$M result \$m \$r \$(up)"
done < /kfarm/load.list
echo "\$M done \$(up)"
poweroff -f
EOF
chmod 755 "$R/init"
(cd "$R" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$W/initrd.gz"

CMDLINE="panic=-1 oops=panic loglevel=7 printk.time=1 ${CMDLINE_EXTRA:-}"
case "$GUEST_ARCH" in
  x86_64)
    QEMU=(qemu-system-x86_64 -machine q35 -append "console=ttyS0 $CMDLINE")
    # the host CPU minus the ARCH_CAPABILITIES MSR, which some nested KVM hosts refuse to set
    # the comma is qemu's (one -cpu value: host minus a feature), not an array separator
    # shellcheck disable=SC2054
    if [ "$ACCEL" = kvm ]; then QEMU+=(-accel kvm -cpu host,-arch-capabilities); else QEMU+=(-accel tcg -cpu max); fi ;;
  aarch64)
    QEMU=(qemu-system-aarch64 -machine virt -append "console=ttyAMA0 $CMDLINE")
    if [ "$ACCEL" = kvm ]; then QEMU+=(-accel kvm -cpu host); else QEMU+=(-accel tcg -cpu max); fi ;;
  *) say "no QEMU for $GUEST_ARCH"; status boot-failed ;;
esac
QEMU+=(-m "${MEM_MB:-512}" -smp 1 -nographic -nodefaults -serial stdio -monitor none -nic none -no-reboot
       -kernel "$VMLINUZ" -initrd "$W/initrd.gz")
say "booting: ${QEMU[*]}"
start=$(date +%s%3N)
set +e
timeout -k 5 "${BOOT_TIMEOUT:-120}" "${QEMU[@]}" </dev/null 2>&1 | cat >&2
rc=${PIPESTATUS[0]}
set -e
wall=$(( $(date +%s%3N) - start ))
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status timeout "$rc" "$wall"; fi
status ran "$rc" "$wall"
