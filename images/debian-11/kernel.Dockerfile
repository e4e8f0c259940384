# One kernel's headers on the release's toolchain image: its linux-headers-<kver> (pinned to
# the version discovery saw), its -common, its linux-kbuild and its compiler package.
# On bullseye that is linux-compiler-gcc-10-x86 (gcc-10, the kernel's own compiler). The recipe
# is the newer releases' one: headers .deb fetched with `apt-get download`, installed with
# `dpkg --force-depends`, a placeholder linux-image-<kver>-unsigned when the headers depend on a
# kernel image (5.10's do not, so none is made here) and an apt pin refusing linux-image-*.
ARG TOOLCHAIN
FROM ${TOOLCHAIN}
ARG KERNEL
ARG HEADERS_VERSION
ARG DEPENDS
RUN set -eux; \
    test -n "$KERNEL" && test -n "$HEADERS_VERSION"; \
    printf '%s\n' 'Package: linux-image-*' 'Pin: release *' 'Pin-Priority: -1' > /etc/apt/preferences.d/kfarm-no-kernel-image; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $DEPENDS; \
    cd /tmp; apt-get download "linux-headers-$KERNEL=$HEADERS_VERSION"; \
    if dpkg-deb -f "linux-headers-${KERNEL}_"*.deb Depends | grep -q "linux-image-$KERNEL"; then \
        mkdir -p /tmp/placeholder/DEBIAN; \
        printf '%s\n' "Package: linux-image-$KERNEL-unsigned" "Version: $HEADERS_VERSION" \
            "Architecture: $(dpkg --print-architecture)" "Maintainer: kfarm <kfarm@localhost>" \
            "Description: kfarm placeholder for the kernel image (no files)" \
            " Satisfies linux-headers-$KERNEL's dependency so apt never installs a kernel here." \
            > /tmp/placeholder/DEBIAN/control; \
        dpkg-deb --root-owner-group --build /tmp/placeholder /tmp/placeholder.deb; \
        dpkg -i /tmp/placeholder.deb; rm -rf /tmp/placeholder /tmp/placeholder.deb; \
    fi; \
    dpkg -i --force-depends "/tmp/linux-headers-${KERNEL}_"*.deb; rm -f /tmp/*.deb; \
    apt-get check; \
    apt-get clean; rm -rf /var/lib/apt/lists/*; \
    test -d "/lib/modules/$KERNEL/build/include" || { echo "no headers for $KERNEL" >&2; exit 1; }
