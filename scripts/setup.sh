#!/usr/bin/env bash
# Prepare this machine for kfarm: system packages, a running Docker engine, node_modules,
# the compiled CLI (lib/) and the debian-12 build image.
#
# Idempotent: a second run finds everything in place, says so and takes a few seconds.
#
# Environment:
#   KFARM_STATE_DIR     where setup.log goes (default ~/.kfarm)
#   KFARM_SKIP_IMAGES=1 do not build the kfarm images
#   KFARM_TEST_TOOLS=1  also what only the test suite uses (scripts/test.sh sets it)
#   DOCKER_HOST         when it points at a remote engine, no local dockerd is started
set -euo pipefail

readonly SETUP_START=$SECONDS

say() { printf '[setup] %s\n' "$*"; }
# Seconds since the previous call: each finished step says how long it took.
step_mark=$SECONDS
took() { TOOK="$((SECONDS - step_mark)) s"; step_mark=$SECONDS; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# --- root, or re-exec with sudo ------------------------------------------------------------
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/as-root.sh"
kfarm_as_root "$(readlink -f "${BASH_SOURCE[0]}")" "$@"

REPO_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
readonly REPO_ROOT
STATE_DIR=${KFARM_STATE_DIR:-${HOME:-/root}/.kfarm}
mkdir -p "$STATE_DIR"
readonly LOG="$STATE_DIR/setup.log"
printf '\n===== kfarm setup %s =====\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" >>"$LOG"

# Run a command with its output in the log; on failure show the log's tail and stop.
logged() {
  local what=$1; shift
  printf '\n--- %s: %s\n' "$what" "$*" >>"$LOG"
  local from
  from=$(stat -c %s "$LOG")
  if ! "$@" >>"$LOG" 2>&1 </dev/null; then
    printf '[setup] ERROR: %s failed; its last lines (all of it in %s):\n' "$what" "$LOG" >&2
    tail -c "+$((from + 1))" "$LOG" | tail -n 30 | sed 's/^/    /' >&2
    exit 1
  fi
}

# Like logged, for long steps whose own output is a few progress lines: shown as they come.
shown() {
  local what=$1; shift
  printf '\n--- %s: %s\n' "$what" "$*" >>"$LOG"
  if ! "$@" 2>&1 </dev/null | tee -a "$LOG" | sed -u 's/^/[setup]   /'; then
    die "$what failed: see the lines above (all of it in $LOG)"
  fi
}

# --- system packages -----------------------------------------------------------------------
node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 18 || (a === 18 && b >= 19) ? 0 : 1);
  ' 2>/dev/null
}

missing=()
if node_ok; then
  command -v npm >/dev/null 2>&1 || missing+=(npm)
else
  missing+=(nodejs npm)
fi
{ command -v dockerd && command -v docker; } >/dev/null 2>&1 || missing+=(docker.io)
# compose.yaml (Redis + workers) and its test: Docker's compose plugin, or Debian's docker-compose.
{ command -v docker-compose || docker compose version; } >/dev/null 2>&1 || missing+=(docker-compose)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v debootstrap  >/dev/null 2>&1 || missing+=(debootstrap)
command -v modinfo      >/dev/null 2>&1 || missing+=(kmod)
command -v rpm          >/dev/null 2>&1 || missing+=(rpm)
command -v rpmbuild     >/dev/null 2>&1 || missing+=(rpm)
command -v openssl      >/dev/null 2>&1 || missing+=(openssl)
# the kmm packer's static cp; the tests read its Module YAML with a real YAML parser
dpkg -s busybox-static  >/dev/null 2>&1 || missing+=(busybox-static)
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
command -v xz           >/dev/null 2>&1 || missing+=(xz-utils)
# kfarm serve's database (better-sqlite3) compiles its addon where npm has no prebuilt one for this Node
{ command -v make && command -v g++ && command -v python3; } >/dev/null 2>&1 || missing+=(make g++ python3)
# the archive's indexes come over http: kfarm refuses to read them unless gpgv checks their
# signature against Debian's keys (Ubuntu has neither the keyring nor always gpgv by default)
[[ -s /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
command -v gpgv         >/dev/null 2>&1 || missing+=(gpgv)
command -v git          >/dev/null 2>&1 || missing+=(git)
# the APT publisher: reprepro makes the repository, gpg signs it (src/publish/)
command -v reprepro     >/dev/null 2>&1 || missing+=(reprepro)
command -v gpg          >/dev/null 2>&1 || missing+=(gpg)
# the DNF publisher: createrepo_c makes repodata on the host, as rpmbuild makes the packages (rpmsign comes with rpm)
command -v createrepo_c >/dev/null 2>&1 || missing+=(createrepo-c)
# the OCI publisher: skopeo pushes the KMM image archives to a registry
command -v skopeo       >/dev/null 2>&1 || missing+=(skopeo)
[[ -s /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
# --sign-key pkcs11:<uri>: openssl signs through the token with libp11's engine; pkcs11-tool
# (opensc) counts the keys a URI matches (src/signing/pkcs11-token.ts)
[[ -e "$(openssl version -e 2>/dev/null | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so" ]] || missing+=(libengine-pkcs11-openssl)
command -v pkcs11-tool  >/dev/null 2>&1 || missing+=(opensc)
if [[ ${KFARM_TEST_TOOLS:-0} == 1 ]]; then
  # report.html is checked in a real headless browser, junit.xml against its schema
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v xmllint  >/dev/null 2>&1 || missing+=(libxml2-utils)
  # the shell scripts (driver.sh, boot.sh, sign.sh, scripts/) are linted by test/unit/shellcheck.test.ts
  command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
  # the OCI publisher's test pushes to a real registry (Debian's distribution registry, basic
  # auth from htpasswd -B, TLS from a test CA)
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  command -v htpasswd        >/dev/null 2>&1 || missing+=(apache2-utils)
  # kfarm serve is tested behind a TLS-terminating reverse proxy (test/e2e/serve-deploy.test.ts)
  command -v nginx           >/dev/null 2>&1 || missing+=(nginx)
  # --sign-key pkcs11: is tested with SoftHSM2 as the token (test/integration/pkcs11-signing.test.ts)
  command -v softhsm2-util   >/dev/null 2>&1 || missing+=(softhsm2)
fi

POLICY_RC=/usr/sbin/policy-rc.d
created_policy=0
remove_policy() {
  if [[ $created_policy -eq 1 ]]; then rm -f "$POLICY_RC"; created_policy=0; fi
}
trap remove_policy EXIT

if [[ ${#missing[@]} -eq 0 ]]; then
  say "system packages: all present (node $(node --version), docker, docker-compose, redis-server, debootstrap, kmod, rpm, openssl, busybox-static, python3-yaml, xz, debian-archive-keyring, gpgv, git, reprepro, gpg, createrepo-c, skopeo, ca-certificates)"
else
  command -v apt-get >/dev/null 2>&1 \
    || die "missing: ${missing[*]}; this script installs them with apt-get (Debian/Ubuntu), which is not here. Install them by hand."
  say "installing ${missing[*]} (apt-get; log: $LOG)"
  # Keep freshly installed services (docker, redis) from starting on their own; kfarm starts
  # what it needs. Only when no policy is in place already.
  if [[ ! -e $POLICY_RC ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
    chmod 755 "$POLICY_RC"
    created_policy=1
  fi
  logged "apt-get update" apt-get update
  logged "apt-get install" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
  remove_policy
  hash -r
  node_ok || die "node $(node --version 2>/dev/null || echo '(none)') is older than 18.19, which kfarm needs; install a newer Node.js (e.g. from nodejs.org) and re-run"
  command -v npm >/dev/null 2>&1 || die "npm is still missing after installing it"
  took; say "system packages: installed ($TOOK)"
fi

# --- Docker engine -------------------------------------------------------------------------
docker_up() { timeout "${1:-5}" docker info >/dev/null 2>&1; }

local_engine=1
case ${DOCKER_HOST:-} in
  ''|unix:///var/run/docker.sock|unix:///run/docker.sock) ;;
  *) local_engine=0 ;;
esac

if docker_up 10; then
  took; say "docker engine: running ($TOOK)"
elif [[ $local_engine -eq 0 ]]; then
  die "the docker engine at DOCKER_HOST=$DOCKER_HOST does not answer; start it, or unset DOCKER_HOST to use a local one"
else
  DOCKERD_LOG=/var/log/kfarm-dockerd.log
  pid=""
  [[ -r /var/run/docker.pid ]] && pid=$(tr -dc '0-9' </var/run/docker.pid)
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    say "docker engine: dockerd (pid $pid) is running but not answering yet; waiting"
  elif [[ -d /run/systemd/system && $(cat /proc/1/comm 2>/dev/null) == systemd ]]; then
    say "docker engine: starting (systemctl start docker)"
    systemctl start docker >>"$LOG" 2>&1 || say "systemctl start docker failed (see $LOG); waiting anyway"
    DOCKERD_LOG="$LOG (and: journalctl -u docker)"
  else
    say "docker engine: starting dockerd (no systemd; log: $DOCKERD_LOG)"
    # Detached from this script (own session, no inherited stdio) so that it outlives it
    # and never holds a caller's pipe open.
    setsid nohup dockerd >>/var/log/kfarm-dockerd.log 2>&1 </dev/null &
    disown
  fi
  for _ in $(seq 1 60); do
    docker_up 5 && break
    sleep 1
  done
  if ! docker_up 5; then
    printf '[setup] ERROR: the docker engine did not answer within 60 s. Last lines of %s:\n' "$DOCKERD_LOG" >&2
    [[ -r /var/log/kfarm-dockerd.log ]] && tail -n 20 /var/log/kfarm-dockerd.log | sed 's/^/    /' >&2
    cat >&2 <<'EOF'
[setup] hint: dockerd needs root, cgroups, iptables and an overlay2-capable filesystem.
[setup]       Inside a container, run that container with --privileged. Try `dockerd` by hand
[setup]       to see the error, then re-run this script.
EOF
    exit 1
  fi
  took; say "docker engine: running ($TOOK)"
fi

# --- node_modules and the compiled CLI -----------------------------------------------------
cd "$REPO_ROOT"
if [[ ! -f package-lock.json ]]; then
  if [[ -d node_modules ]]; then
    say "node_modules: present (no package-lock.json), skipping npm install"
  else
    say "node_modules: npm install (no package-lock.json; log: $LOG)"
    logged "npm install" npm install --no-audit --no-fund
  fi
elif [[ ! -d node_modules || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "node_modules: npm ci (log: $LOG)"
  logged "npm ci" npm ci --no-audit --no-fund
else
  say "node_modules: up to date, skipping npm ci"
fi

logged "npm run build" npm run build
took; say "node_modules + compiled: ok ($TOOK)"

# --- kfarm images --------------------------------------------------------------------------
if [[ ${KFARM_SKIP_IMAGES:-} == 1 ]]; then
  say "images: skipped (KFARM_SKIP_IMAGES=1)"
else
  say "images: kfarm images build debian-12 (cached; the first run takes a few minutes; log: $LOG)"
  shown "kfarm images build debian-12" node bin/kfarm.js images build debian-12
  took; say "images: debian-12 ready ($TOOK)"
fi

say "done in $((SECONDS - SETUP_START)) s"
