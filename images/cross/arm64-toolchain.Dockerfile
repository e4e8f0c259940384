# kfarm cross toolchain for arm64 kernels, shared by every release: the release's toolchain
# image (its apt sources, make, native gcc for host programs) plus the amd64-hosted cross
# compiler gcc-N-aarch64-linux-gnu (and its binutils) for the N the kernels' headers name.
# Tagged kfarm/<release>-toolchain:arm64-gcc-N; each arm64 kernel image starts FROM it
# (arm64-kernel.Dockerfile).
ARG TOOLCHAIN
FROM ${TOOLCHAIN}
ARG GCC
RUN set -eux; \
    test -n "$GCC"; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "gcc-$GCC-aarch64-linux-gnu" binutils-aarch64-linux-gnu; \
    apt-get clean; rm -rf /var/lib/apt/lists/*; \
    "aarch64-linux-gnu-gcc-$GCC" --version; aarch64-linux-gnu-strip --version
