#!/usr/bin/env bash
# vLLM's router (the `vllm-router` package on PyPI, a Rust binary with a Python launcher) on
# this machine, in front of servers on loopback: for the router tests and for trying it out.
#
#   scripts/vllm-router.sh install                        a venv with vllm-router (reused once complete)
#   scripts/vllm-router.sh path                           prints the vllm-router executable
#   scripts/vllm-router.sh start PORT POLICY URL...       a router on 127.0.0.1:PORT in front of URL...
#   scripts/vllm-router.sh stop PORT
#
# `start` waits until the router answers /health (it waits itself for every worker to answer
# theirs first), checks the workers every second, and logs to the cache dir's run/. POLICY is
# one of vllm-router's: consistent_hash, round_robin, power_of_two, random, cache_aware, ...
# For example, three mocks behind a router:
#
#   for i in 1 2 3; do vllm-mock --port 900$i --replica-id r$i & done
#   scripts/vllm-router.sh start 9000 consistent_hash http://127.0.0.1:900{1,2,3}
#
# Environment knobs:
#   VLLM_RS_CACHE            cache dir (default $HOME/.cache/vllm-rs); the venv is router-venv/
#   VLLM_RS_PYTHON           interpreter used to create the venv (default python3, 3.8 or newer)
#   VLLM_ROUTER_START_TIMEOUT  seconds `start` waits for /health (default 60)
set -euo pipefail

readonly VLLM_ROUTER_VERSION=0.1.17
readonly CACHE="${VLLM_RS_CACHE:-$HOME/.cache/vllm-rs}"
readonly VENV="$CACHE/router-venv"
readonly RUN="$CACHE/run"
readonly MARKER="$VENV/install-complete"

say() { printf '[vllm-router] %s\n' "$*"; }
die() {
  printf '[vllm-router] error: %s\n' "$*" >&2
  exit 1
}
usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

installed() { [[ -f "$MARKER" && "$(cat "$MARKER")" == "vllm-router==$VLLM_ROUTER_VERSION" ]]; }

install() {
  if installed; then
    say "vllm-router $VLLM_ROUTER_VERSION is installed in $VENV"
    return 0
  fi
  local python="${VLLM_RS_PYTHON:-python3}"
  command -v "$python" >/dev/null || die "$python not found (set VLLM_RS_PYTHON)"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  say "creating $VENV"
  "$python" -m venv "$VENV" || die "cannot create a venv (Debian: apt-get install python3-venv)"
  say "installing vllm-router==$VLLM_ROUTER_VERSION from PyPI"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "vllm-router==$VLLM_ROUTER_VERSION" ||
    die "pip install vllm-router failed"
  "$VENV/bin/vllm-router" --help >/dev/null || die "vllm-router does not run"
  echo "vllm-router==$VLLM_ROUTER_VERSION" >"$MARKER"
  say "installed: $VENV/bin/vllm-router"
}

pid_file() { echo "$RUN/router-$1.pid"; }

start() {
  [[ $# -ge 3 ]] || usage
  local port=$1 policy=$2
  shift 2
  installed || die "not installed: run scripts/vllm-router.sh install"
  [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, not $port"
  mkdir -p "$RUN"
  local log="$RUN/router-$port.log"
  "$VENV/bin/vllm-router" --host 127.0.0.1 --port "$port" --policy "$policy" \
    --worker-urls "$@" --health-check-interval-secs 1 >"$log" 2>&1 &
  local pid=$!
  echo "$pid" >"$(pid_file "$port")"
  local deadline=$((SECONDS + ${VLLM_ROUTER_START_TIMEOUT:-60}))
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$(pid_file "$port")"
      tail -n 20 "$log" >&2
      die "the router exited (log: $log)"
    fi
    if ((SECONDS >= deadline)); then
      stop "$port"
      die "the router did not answer /health within ${VLLM_ROUTER_START_TIMEOUT:-60} s (log: $log)"
    fi
    sleep 0.2
  done
  say "router on http://127.0.0.1:$port ($policy) in front of $*; pid $pid, log $log"
}

stop() {
  [[ $# -eq 1 ]] || usage
  local file pid
  file=$(pid_file "$1")
  [[ -f "$file" ]] || {
    say "no router started on port $1"
    return 0
  }
  pid=$(cat "$file")
  # The process renames itself (`vllm::router`): stop it by pid, not by name.
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
  say "stopped the router on port $1"
}

case "${1:-}" in
  install) install ;;
  path)
    installed || die "not installed: run scripts/vllm-router.sh install"
    echo "$VENV/bin/vllm-router"
    ;;
  start)
    shift
    start "$@"
    ;;
  stop)
    shift
    stop "$@"
    ;;
  *) usage ;;
esac
