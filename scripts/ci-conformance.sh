#!/usr/bin/env bash
# The conformance suite against a real vLLM server: installs it (once; reused from the cache
# dir afterwards), starts the chat instance on a free loopback port, runs
# `cargo test -p vllm-client --test conformance` against it, and always stops the server.
# Exits non-zero when any step fails.
#
#   scripts/ci-conformance.sh [extra cargo test arguments, e.g. -- --nocapture]
#
# Environment: VLLM_RS_CACHE and the other knobs of scripts/vllm-server.sh; VLLM_CONFORMANCE_PORT
# to choose the port instead of picking a free one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

server=scripts/vllm-server.sh
cache=${VLLM_RS_CACHE:-$HOME/.cache/vllm-rs}
say() { printf '\n==> %s\n' "$*"; }

port_free() { ! (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local port tries
  for ((tries = 0; tries < 200; tries++)); do
    port=$((20000 + RANDOM % 20000))
    if port_free "$port"; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

say "install the vLLM server (reused when complete)"
"$server" install

port=${VLLM_CONFORMANCE_PORT:-$(pick_port)}
started=0
cleanup() {
  local status=$?
  trap - EXIT
  # Stop the server even when the output is gone (a closed pipe) or a command fails here.
  trap '' PIPE
  set +e
  # A failed start has stopped its server already (and removed the pid file).
  if ((started)) && [[ -f "$cache/run/server-$port.pid" ]]; then
    if ((status != 0)); then
      say "last lines of the server log"
      tail -n 30 "$cache/run/server-$port.log" || true
    fi
    say "stop the server on port $port"
    "$server" stop "$port" || status=1
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

say "start the chat server on port $port"
started=1
start_time=$SECONDS
"$server" start "$port" chat
echo "started in $((SECONDS - start_time)) s"

say "conformance suite against http://127.0.0.1:$port/v1"
test_time=$SECONDS
VLLM_CONFORMANCE_URL="http://127.0.0.1:$port/v1" \
  cargo test -p vllm-client --locked --test conformance "$@"
echo "suite ran in $((SECONDS - test_time)) s"
