# One arm64 kernel's headers on the release's cross toolchain (arm64-toolchain.Dockerfile).
# apt installs the amd64 side: the arch:all linux-headers-<abi>-common of the same upload and
# the amd64 linux-kbuild-* (fixdep, modpost: host programs that read any ELF). The arm64
# headers .deb itself is fetched by URL and checked against the archive's SHA256, then
# unpacked with `dpkg-deb -x` and copied in: apt's multiarch cannot resolve it (its kbuild and
# gcc dependencies are arm64 packages), and leaving it out of dpkg's database keeps apt usable
# in images derived from this one.
ARG TOOLCHAIN
FROM ${TOOLCHAIN}
ARG KERNEL
ARG HEADERS_VERSION
ARG HEADERS_URL
ARG HEADERS_SHA256
ARG DEPENDS
RUN set -eux; \
    test -n "$KERNEL" && test -n "$HEADERS_VERSION" && test -n "$HEADERS_URL" && test -n "$HEADERS_SHA256"; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $DEPENDS; \
    /usr/lib/apt/apt-helper download-file "$HEADERS_URL" /tmp/headers.deb "SHA256:$HEADERS_SHA256"; \
    test "$(dpkg-deb -f /tmp/headers.deb Version)" = "$HEADERS_VERSION"; \
    mkdir /tmp/headers; dpkg-deb -x /tmp/headers.deb /tmp/headers; \
    cp -a /tmp/headers/usr/src/. /usr/src/; \
    for d in lib/modules usr/lib/modules; do \
        if [ -d "/tmp/headers/$d" ]; then mkdir -p /lib/modules; cp -a "/tmp/headers/$d/." /lib/modules/; fi; \
    done; \
    rm -rf /tmp/headers /tmp/headers.deb; \
    apt-get clean; rm -rf /var/lib/apt/lists/*; \
    test "$(readlink -f "/lib/modules/$KERNEL/build")" = "/usr/src/linux-headers-$KERNEL"; \
    test -d "/lib/modules/$KERNEL/build/include" || { echo "no headers for $KERNEL" >&2; exit 1; }; \
    test -x "/lib/modules/$KERNEL/build/scripts/basic/fixdep" || { echo "no amd64 kbuild tools for $KERNEL" >&2; exit 1; }
