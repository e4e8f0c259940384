# One kernel's headers on the release's toolchain image (images/<release>/toolchain.Dockerfile):
# its linux-headers-<kver> (pinned to the version discovery saw), its -common, its linux-kbuild
# and its compiler package (bullseye: linux-compiler-gcc-10-x86, the kernel's own compiler).
# One recipe for every release: a change here reaches every held image at the next
# `kfarm images sync` (the io.kfarm.recipe-files label, src/images/recipe-files.ts).
# 6.12 headers depend on linux-image-<kver> (~100 MB, and through it systemd) that a module
# build never reads. The headers .deb is fetched with `apt-get download` and installed with
# `dpkg --force-depends`, everything else through apt as usual. So that apt in this image (or
# one derived from it) never pulls a kernel in to "fix" that dependency, an empty placeholder
# package linux-image-<kver>-unsigned of the same version satisfies it, and an apt pin
# (priority -1) refuses every real linux-image-* package. 5.10 headers depend on no kernel
# image: there no placeholder is made.
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
