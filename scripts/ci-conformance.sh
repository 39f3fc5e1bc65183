#!/usr/bin/env bash
# The conformance suite against a real vLLM server: installs it (once; reused from the cache
# dir afterwards), starts the chat instance and the embeddings (pooling) instance on free
# loopback ports, runs `cargo test -p vllm-client --test conformance` (and vllm-cli's) against them, and always
# stops both servers. Exits non-zero when any step fails.
#
#   scripts/ci-conformance.sh [extra cargo test arguments, e.g. -- --nocapture]
#
# Environment: VLLM_RS_CACHE and the other knobs of scripts/vllm-server.sh;
# VLLM_CONFORMANCE_PORT and VLLM_CONFORMANCE_EMBED_PORT to choose the ports instead of picking
# free ones.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

server=scripts/vllm-server.sh
cache=${VLLM_RS_CACHE:-$HOME/.cache/vllm-rs}
say() { printf '\n==> %s\n' "$*"; }

port_free() { ! (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A free port other than those given as arguments.
pick_port() {
  local port tries taken
  for ((tries = 0; tries < 200; tries++)); do
    port=$((20000 + RANDOM % 20000))
    for taken in "$@"; do
      [[ "$port" == "$taken" ]] && continue 2
    done
    if port_free "$port"; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

say "install the vLLM server (reused when complete)"
install_time=$SECONDS
"$server" install
echo "install took $((SECONDS - install_time)) s"

chat_port=${VLLM_CONFORMANCE_PORT:-$(pick_port)}
embed_port=${VLLM_CONFORMANCE_EMBED_PORT:-$(pick_port "$chat_port")}
[[ "$chat_port" != "$embed_port" ]] || {
  echo "the chat and embed servers need two different ports (both $chat_port)" >&2
  exit 2
}
# The ports of the servers this script started (or was starting), to stop on exit.
started=()
cleanup() {
  local status=$?
  trap - EXIT
  # Stop the servers even when the output is gone (a closed pipe) or a command fails here.
  trap '' PIPE
  set +e
  local port
  for port in "${started[@]}"; do
    # A failed start has stopped its server already (and removed the pid file).
    [[ -f "$cache/run/server-$port.pid" ]] || continue
    if ((status != 0)); then
      say "last lines of the server log of port $port"
      tail -n 30 "$cache/run/server-$port.log" || true
    fi
    say "stop the server on port $port"
    "$server" stop "$port" || status=1
  done
  exit "$status"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# One after the other: on 2 cores starting both at once gains nothing (measured: 148 s for both
# at once, 80 s + 68 s in turn) and makes each start slower against its timeout.
say "start the chat server on port $chat_port"
started+=("$chat_port")
start_time=$SECONDS
"$server" start "$chat_port" chat
echo "chat server started in $((SECONDS - start_time)) s"

say "start the embeddings server on port $embed_port"
started+=("$embed_port")
start_time=$SECONDS
"$server" start "$embed_port" embed
echo "embeddings server started in $((SECONDS - start_time)) s"

say "conformance suite against http://127.0.0.1:$chat_port/v1 (embeddings: port $embed_port)"
test_time=$SECONDS
VLLM_CONFORMANCE_URL="http://127.0.0.1:$chat_port/v1" \
  VLLM_CONFORMANCE_EMBED_URL="http://127.0.0.1:$embed_port/v1" \
  cargo test -p vllm-client --locked --test conformance "$@"
VLLM_CONFORMANCE_URL="http://127.0.0.1:$chat_port/v1" \
  VLLM_CONFORMANCE_EMBED_URL="http://127.0.0.1:$embed_port/v1" \
  cargo test -p vllm-cli --locked --test conformance "$@"
echo "suite ran in $((SECONDS - test_time)) s"
