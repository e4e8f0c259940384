# kfarm toolchain image for Debian experimental (on sid): everything a module build needs except a
# kernel's headers. Each kernel gets its own small image FROM this one (kernel.Dockerfile).
# A pre-release suite: its kernels come and go, and its compiler moves with them, so no gcc-N
# is pinned here; each kernel image installs the compiler its headers depend on
# (gcc-16-for-host on 2026-12-08) from the suite, next to the suite's default gcc for host programs.
# Built by `kfarm images build|sync debian-experimental`; BASE_IMAGE is the bootstrapped sid root.
ARG BASE_IMAGE=kfarm/base:sid
FROM ${BASE_IMAGE}
# sid, and experimental for the kernels: apt never picks an experimental package by itself
# (NotAutomatic), but a kernel image pins its headers' version, and a package only experimental
# has (linux-kbuild-7.3) is its candidate all the same.
COPY debian.sources /etc/apt/sources.list.d/debian.sources
# util-linux gives setpriv and coreutils timeout: the driver drops privileges and bounds steps with them.
# apt retries a failed download before the build fails. A pre-release suite's InRelease is valid
# for a week (Valid-Until), and a mirror that lags a week stops every build (deb.debian.org here on
# 2026-12-08 served sid, forky and experimental of 2026-10-30, expired 2026-11-06): apt still checks
# the signatures, not that date, as kfarm's own index reading does (docs/images.md).
RUN set -eux; \
    echo 'Acquire::Retries "3";' > /etc/apt/apt.conf.d/80kfarm-retries; \
    echo 'Acquire::Check-Valid-Until "false";' > /etc/apt/apt.conf.d/80kfarm-valid-until; \
    rm -f /etc/apt/sources.list; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        bash ca-certificates make gcc kmod binutils patch xz-utils util-linux coreutils; \
    apt-get clean; rm -rf /var/lib/apt/lists/*; \
    command -v setpriv; command -v timeout
# Builds run as nobody (65534). The driver copies the source into /var/lib/dkms and
# links it from /usr/src, the paths real DKMS uses, so both must be writable by it.
RUN mkdir -p /var/lib/dkms /kfarm \
 && chown 65534:65534 /var/lib/dkms /kfarm \
 && chmod 1777 /usr/src
