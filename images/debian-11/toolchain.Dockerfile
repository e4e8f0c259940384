# kfarm toolchain image for Debian 11 (bullseye): everything a module build needs except a
# kernel's headers. Each kernel gets its own small image FROM this one (kernel.Dockerfile), so
# adding an errata kernel downloads and installs only that kernel's headers.
# Built by `kfarm images build|sync debian-11`; BASE_IMAGE is the bootstrapped bullseye root.
ARG BASE_IMAGE=kfarm/base:bullseye
FROM ${BASE_IMAGE}
ARG GCC=gcc-10
# The -updates and -security suites hold the newest kernel ABIs (bullseye-backports is gone
# from deb.debian.org, and the 6.1 "deb11" kernels of -security are listed but 404).
COPY debian.sources /etc/apt/sources.list.d/debian.sources
# util-linux gives setpriv and coreutils timeout: the driver drops privileges and bounds steps with them.
# apt retries a failed download (a DNS hiccup failed one kernel in 36 here) before the build fails.
RUN set -eux; \
    echo 'Acquire::Retries "3";' > /etc/apt/apt.conf.d/80kfarm-retries; \
    rm -f /etc/apt/sources.list; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        bash ca-certificates make gcc $GCC kmod binutils patch xz-utils util-linux coreutils; \
    apt-get clean; rm -rf /var/lib/apt/lists/*; \
    command -v setpriv; command -v timeout
# Builds run as nobody (65534). The driver copies the source into /var/lib/dkms and
# links it from /usr/src, the paths real DKMS uses, so both must be writable by it.
RUN mkdir -p /var/lib/dkms /kfarm \
 && chown 65534:65534 /var/lib/dkms /kfarm \
 && chmod 1777 /usr/src
