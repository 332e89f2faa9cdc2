# Shared by the scripts: sourced, not run.

log() { printf '==> %s\n' "$*" >&2; }

# A port nothing listens on, below Linux's ephemeral range (32768 and up), where an outgoing
# connection's local port can make a bind fail even though nothing accepts on it.
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# The private virtual environment of the external checkers (target/checkers), made on first
# use; `checker_install PACKAGE==VERSION` installs into it unless that version is there.
CHECKERS_VENV=target/checkers
checker_install() {
  local spec=$1 name=${1%%==*} version=${1##*==}
  if "$CHECKERS_VENV/bin/pip" show "$name" 2>/dev/null | grep -qx "Version: $version"; then
    return 0
  fi
  if [ ! -x "$CHECKERS_VENV/bin/pip" ]; then
    if ! python3 -m venv "$CHECKERS_VENV" 2>/dev/null; then
      # Debian's own python3 keeps venv in a package of its own.
      local as_root=()
      [ "$(id -u)" -eq 0 ] || as_root=(sudo)
      "${as_root[@]}" apt-get update -qq
      "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$CHECKERS_VENV"
    fi
  fi
  log "installing $spec into $CHECKERS_VENV"
  "$CHECKERS_VENV/bin/pip" install -q --disable-pip-version-check "$spec"
}
