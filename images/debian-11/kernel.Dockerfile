# One kernel's headers on the release's toolchain image: its linux-headers-<kver> (pinned to
# the version discovery saw), its -common, its linux-kbuild and its compiler package.
# On bullseye that is linux-compiler-gcc-10-x86 (gcc-10, the kernel's own compiler). The headers
# .deb is fetched with `apt-get download` and installed with `dpkg --force-depends`, as on the
# newer releases whose headers depend on a linux-image a module build never reads; 5.10 headers
# name no such package, so nothing is skipped here.
ARG TOOLCHAIN
FROM ${TOOLCHAIN}
ARG KERNEL
ARG HEADERS_VERSION
ARG DEPENDS
RUN set -eux; \
    test -n "$KERNEL" && test -n "$HEADERS_VERSION"; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $DEPENDS; \
    cd /tmp; apt-get download "linux-headers-$KERNEL=$HEADERS_VERSION"; \
    dpkg -i --force-depends /tmp/linux-headers-*.deb; rm -f /tmp/*.deb; \
    apt-get clean; rm -rf /var/lib/apt/lists/*; \
    test -d "/lib/modules/$KERNEL/build/include" || { echo "no headers for $KERNEL" >&2; exit 1; }
