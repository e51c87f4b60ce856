#!/usr/bin/env bash
# Install everything the tests and the demo need on a fresh Debian machine:
# apt packages (PostgreSQL, Redis), the Python venv with the project, and the
# control-plane binaries. Idempotent: a second run only checks.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PACKAGES=(postgresql redis-server)
VENV="$REPO_ROOT/.venv"
PYPROJECTS=("$REPO_ROOT/pyproject.toml" "$REPO_ROOT/contracts/pyproject.toml"
  "$REPO_ROOT/tools/exchange-sim/pyproject.toml" "$REPO_ROOT/tools/podrunner/pyproject.toml"
  "$REPO_ROOT/tools/devenv/pyproject.toml")

install_apt() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then log "apt packages present: ${APT_PACKAGES[*]}"; return; fi
  log "apt: installing ${missing[*]}"
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the system services on install; tests run their own instances.
  $sudo service redis-server stop >/dev/null 2>&1 || true
}

install_venv() {
  local stamp="$VENV/.tradebot-deps" want
  want="$(cat "${PYPROJECTS[@]}" | sha256sum | cut -c1-16)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then log "venv up to date: $VENV"; return; fi
  log "venv: installing the project and dev dependencies into $VENV"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # The product, its contracts and the development tools (each its own distribution).
  "$VENV/bin/pip" install -q -e "$REPO_ROOT/contracts" -e "$REPO_ROOT/tools/exchange-sim" \
    -e "$REPO_ROOT/tools/podrunner" -e "$REPO_ROOT/tools/devenv" -e "$REPO_ROOT[dev]"
  echo "$want" > "$stamp"
}

install_apt
install_venv
"$HACK_DIR/build-binaries.sh"
