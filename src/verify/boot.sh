#!/bin/bash
# kfarm load verification, inside the verify container (no network, read-only root, /work a tmpfs).
# stdin: a tar with kernel.deb and mods/<path below /lib/modules/$KVER>; env: KVER, GUEST_ARCH
# (x86_64|aarch64), ACCEL (kvm|tcg), NONCE, MEM_MB, BOOT_TIMEOUT (s), CMDLINE_EXTRA, SECURE_BOOT (1: boot
# the signed kernel through OVMF in Secure Boot mode, shim and GRUB, with mok/*.pem enrolled as MOKs).
# stderr: this script's steps ("kfarm-verify: ...") and then the guest's serial console.
# stdout: one status line of this script's, which the guest cannot write to.
set -euo pipefail
W=/work
say() { echo "kfarm-verify: $*" >&2; }
status() { echo "status=$1 qemu_exit=${2:-} wall_ms=${3:-}"; exit 0; }

mkdir -p "$W/in" "$W/deb" "$W/initrd"
tar -x -C "$W/in" --no-same-owner --no-same-permissions --no-overwrite-dir
[ -f "$W/in/kernel.deb" ] || { say "no kernel.deb in the input"; status no-kernel-image; }
SB="${SECURE_BOOT:-0}"
# Secure Boot: Debian's firmware, shim and GRUB, all from the image; a missing one names its package.
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.ms.fd
SHIM=/usr/lib/shim/shimx64.efi.signed
MOKMANAGER=/usr/lib/shim/mmx64.efi.signed
GRUB=/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed
if [ "$SB" = 1 ]; then
  [ "$GUEST_ARCH" = x86_64 ] || { say "Secure Boot verification boots x86_64 kernels only"; status boot-failed; }
  for pair in "$OVMF_CODE:ovmf" "$OVMF_VARS:ovmf" "$SHIM:shim-signed" "$MOKMANAGER:shim-helpers-amd64-signed" "$GRUB:grub-efi-amd64-signed" \
              "$(command -v virt-fw-vars || echo /usr/bin/virt-fw-vars):python3-virt-firmware" "$(command -v mcopy || echo /usr/bin/mcopy):mtools" \
              "$(command -v mkfs.vfat || echo /usr/sbin/mkfs.vfat):dosfstools"; do
    [ -f "${pair%:*}" ] || { say "missing ${pair%:*} (Debian package ${pair##*:})"; echo "status=no-firmware package=${pair##*:}"; exit 0; }
  done
fi

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
if [ "$SB" = 1 ]; then
  # efivarfs is a module in Debian's kernels (signed by Debian, so it loads under lockdown): the guest reads SecureBoot through it
  for e in "$MODDIR"/kernel/fs/efivarfs/efivarfs.ko*; do
    [ -f "$e" ] || continue
    case "$e" in *.xz) xz -dc "$e" ;; *.zst) zstd -qdc "$e" ;; *.gz) gzip -dc "$e" ;; *) cat "$e" ;; esac > "$R/kfarm/efivarfs.ko"
  done
fi
say "load order: $(tr '\n' ' ' < "$R/kfarm/load.list")"
cat > "$R/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
M="@@kfarm-$NONCE"
up() { cut -d' ' -f1 /proc/uptime; }
echo "\$M boot \$(up)"
if [ "$SB" = 1 ]; then
  # read from the guest: the firmware's SecureBoot variable (4 bytes of attributes, then the value) and the kernel's lockdown
  [ -f /kfarm/efivarfs.ko ] && insmod /kfarm/efivarfs.ko 2>/dev/null
  mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null; mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
  f=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c
  if [ -f \$f ]; then sb=\$(tail -c 1 \$f | od -An -tu1 | tr -d ' '); else sb=none; fi
  lk=\$(sed -n 's/.*\\[\\([a-z]*\\)\\].*/\\1/p' /sys/kernel/security/lockdown 2>/dev/null)
  if dmesg | grep -q 'Secure boot enabled'; then kl=1; else kl=0; fi
  echo "\$M secureboot \${sb:-none} \${lk:-none} \$kl"
fi
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
if [ "$SB" = 1 ]; then
  # The fleet's chain: OVMF (Microsoft's keys, Secure Boot on) -> shim -> GRUB -> the signed kernel,
  # all on a FAT EFI system partition built without mounting; the certificates enrolled as MOKs
  # in this boot's copy of the variable store (shim mirrors MokList to MokListRT for the kernel).
  MOKS=()
  while IFS= read -r -d '' c; do MOKS+=(--add-mok 7a8ef1d6-3c4e-4b7f-9d2a-6b1f0c5e4d21 "$c"); done < <(find "$W/in/mok" -name '*.pem' -type f -print0 2>/dev/null | sort -z)
  say "secure boot chain: $(paste -sd, /usr/lib/kfarm/secure-boot-chain 2>/dev/null || echo unknown)"
  say "variable store: $OVMF_VARS with $(( ${#MOKS[@]} / 3 )) MOK(s)"
  virt-fw-vars --input "$OVMF_VARS" --output "$W/vars.fd" "${MOKS[@]}" 2>&1 | sed 's/^/kfarm-verify: virt-fw-vars: /' >&2
  [ -s "$W/vars.fd" ] || { say "virt-fw-vars wrote no variable store"; status boot-failed; }
  # no_timer_check: on a busy host a TCG guest's early timer check can miss ticks and panic
  # ("IO-APIC + timer doesn't work!", seen with four OVMF guests on two cores); it proves nothing here
  printf 'set timeout=0\nlinux /vmlinuz console=ttyS0 no_timer_check %s\ninitrd /initrd.gz\nboot\n' "$CMDLINE" > "$W/grub.cfg"
  kb=$(( ( $(stat -c %s "$VMLINUZ") + $(stat -c %s "$W/initrd.gz") ) / 1024 + 8192 ))
  ESP="$W/esp.img"
  mkfs.vfat -C -n KFARMESP "$ESP" "$kb" >/dev/null
  export MTOOLS_SKIP_CHECK=1
  mmd -i "$ESP" ::/EFI ::/EFI/BOOT ::/EFI/debian
  mcopy -i "$ESP" "$SHIM" ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$ESP" "$MOKMANAGER" ::/EFI/BOOT/mmx64.efi
  mcopy -i "$ESP" "$GRUB" ::/EFI/BOOT/grubx64.efi
  # Debian's signed GRUB reads grub.cfg from /EFI/debian (its prefix) or beside itself
  mcopy -i "$ESP" "$W/grub.cfg" ::/EFI/BOOT/grub.cfg
  mcopy -i "$ESP" "$W/grub.cfg" ::/EFI/debian/grub.cfg
  mcopy -i "$ESP" "$VMLINUZ" ::/vmlinuz
  mcopy -i "$ESP" "$W/initrd.gz" ::/initrd.gz
  rm -f "$W/initrd.gz"
  # the commas are qemu's (one option value each), not array separators
  # shellcheck disable=SC2054
  QEMU=(qemu-system-x86_64 -machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" -drive "if=pflash,format=raw,unit=1,file=$W/vars.fd"
        -drive "if=none,id=esp,format=raw,file=$ESP" -device virtio-blk-pci,drive=esp,bootindex=0)
  # shellcheck disable=SC2054
  if [ "$ACCEL" = kvm ]; then QEMU+=(-accel kvm -cpu host,-arch-capabilities); else QEMU+=(-accel tcg -cpu max); fi
else
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
QEMU+=(-kernel "$VMLINUZ" -initrd "$W/initrd.gz")
fi
QEMU+=(-m "${MEM_MB:-512}" -smp 1 -nographic -nodefaults -serial stdio -monitor none -nic none -no-reboot)
say "booting: ${QEMU[*]}"
start=$(date +%s%3N)
set +e
timeout -k 5 "${BOOT_TIMEOUT:-120}" "${QEMU[@]}" </dev/null 2>&1 | cat >&2
rc=${PIPESTATUS[0]}
set -e
wall=$(( $(date +%s%3N) - start ))
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status timeout "$rc" "$wall"; fi
status ran "$rc" "$wall"
