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
