# shellcheck shell=bash
# Sourced by the scripts in scripts/: when not root, re-run the calling script with sudo,
# keeping the variables that change what setup and kfarm do. Needs $0's path in $1.
kfarm_as_root() {
  [[ $(id -u) -eq 0 ]] && return 0
  command -v sudo >/dev/null 2>&1 || { echo "[kfarm] ERROR: run this as root (it installs packages and starts dockerd); sudo is not available" >&2; exit 1; }
  echo "[kfarm] not root: re-running with sudo"
  local keep=() name script=$1; shift
  while IFS= read -r name; do
    case $name in
      KFARM_*|REDIS_URL|DOCKER_HOST|CI|http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY|npm_config_*|NPM_CONFIG_*)
        keep+=("$name=${!name}") ;;
    esac
  done < <(compgen -e)
  exec sudo env "${keep[@]}" bash "$script" "$@"
}

# cd to the repository root (the folder above scripts/).
kfarm_enter_repo() {
  cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." || exit 1
}
