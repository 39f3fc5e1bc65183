#!/usr/bin/env bash
# Client capacity: streamed chunks per client CPU-second and the client's own added
# inter-token latency, for `vllm-rs bench serve`, vLLM's `vllm bench serve` and a plain
# openai-python (AsyncOpenAI) loop, at several concurrencies, against vllm-mock.
#
#   scripts/bench-capacity.sh [OUT_DIR]
#
# The mock runs on core 0 (taskset -c 0), each client on core 1 (taskset -c 1); a fresh mock
# for every run. Each client's CPU is its process tree's rusage (benches/python/rusage_run.py),
# in all and over the streaming window. The markdown table goes to stdout (and
# OUT_DIR/table.md); every figure to OUT_DIR/figures.json; the runs' files stay in OUT_DIR.
#
# Environment (defaults in brackets):
#   VLLM_PY          Python with vllm (and openai) installed [~/.cache/vllm-rs/venv/bin/python]
#   TOKENIZER        a local model dir with tokenizer.json, for vLLM's random dataset
#                    [the first under ~/.cache/vllm-rs/models]
#   CAP_TARGET_DIR   cargo target dir of the release build [$CARGO_TARGET_DIR or ./target]
#   SKIP_BUILD=1     use the binaries already in CAP_TARGET_DIR/release
#   PORT [18731]  ITL_MS [20]  INPUT_LEN [32]  OUTPUT_LEN [256]
#   CONCURRENCY      space-separated [1 256 1000]
#   PROMPTS_<C>      requests at concurrency C [PROMPTS_1=4, PROMPTS_256=1024,
#                    PROMPTS_1000=3000; otherwise 3·C]: about 20 s of 256 tokens at 20 ms
#   TOOLS            [vllm-rs vllm-bench openai-python]
#   RAW=1            also the raw capacity at concurrency RAW_CONCURRENCY [256], unpaced, in
#                    RAW_ROUNDS [3] rounds (the tools take turns in each round; the report
#                    gives the medians), RAW_PROMPTS_<tool> requests each, against
#                    RAW_SERVER [replay]: the replay server of benches/client_compare
#                    (`serve`: the whole stream in 64 KiB writes, so every client, not the
#                    server, is the limit), or `mock` (vllm-mock --itl-ms 0, which tops out
#                    near 1M chunks/s on its core)
#   STAMP [1]        the paced mock runs with --stamp-events (each chunk carries its send
#                    time): vllm-rs and openai-python then report each chunk's read lag, the
#                    delay that is theirs and not the server's
#   CLIENT_PRIO      a command to run each client under, e.g. "chrt -f 10" (real-time
#                    priority, so that the machine's other work does not take the client's
#                    core) []
#   MOCK_FLAGS       more vllm-mock flags, e.g. --engine-steps (every running stream's token
#                    at the same instant, as vLLM's engine steps emit them) []
#   SERVER_CORE [0]  CLIENT_CORE [1]
#   CAPTURE=1        also capture the mock's segments with tcpdump (on the client's core)
#                    during each paced run and report the server's own lateness from their
#                    kernel stamps (benches/python/pcap_lateness.py): the part of `late` that
#                    is the server's. The capture costs the client's core some CPU, so use it
#                    for a calibration run (TOOLS=vllm-rs), not for the CPU figures
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/target/bench-capacity}"
VLLM_PY="${VLLM_PY:-$HOME/.cache/vllm-rs/venv/bin/python}"
TARGET="${CAP_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}}"
PORT="${PORT:-18731}"
ITL_MS="${ITL_MS:-20}"
INPUT_LEN="${INPUT_LEN:-32}"
OUTPUT_LEN="${OUTPUT_LEN:-256}"
CONCURRENCY="${CONCURRENCY:-1 256 1000}"
TOOLS="${TOOLS:-vllm-rs vllm-bench openai-python}"
SERVER_CORE="${SERVER_CORE:-0}"
CLIENT_CORE="${CLIENT_CORE:-1}"
PYDIR="$ROOT/benches/python"
BASE="http://127.0.0.1:$PORT"

log() { printf '%s\n' "bench-capacity: $*" >&2; }
die() { log "$*"; exit 1; }

[ -x "$VLLM_PY" ] || die "no Python at $VLLM_PY (set VLLM_PY)"
if [ -z "${TOKENIZER:-}" ]; then
  TOKENIZER="$(find "$HOME/.cache/vllm-rs/models" -name tokenizer.json -printf '%h\n' 2>/dev/null | sort | head -1)"
fi
[ -n "$TOKENIZER" ] && [ -f "$TOKENIZER/tokenizer.json" ] || die "no tokenizer dir (set TOKENIZER)"
mkdir -p "$OUT"

# --- build -----------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building vllm-rs and vllm-mock (release) into $TARGET"
  (cd "$ROOT" && CARGO_INCREMENTAL=0 CARGO_TARGET_DIR="$TARGET" \
    cargo build --release -q -p vllm-cli -p vllm-mock) >&2
fi
VLLM_RS="$TARGET/release/vllm-rs"
MOCK="$TARGET/release/vllm-mock"
[ -x "$VLLM_RS" ] && [ -x "$MOCK" ] || die "binaries missing in $TARGET/release"
RAW_SERVER="${RAW_SERVER:-replay}"
REPLAY=""
if [ "${RAW:-0}" = 1 ] && [ "$RAW_SERVER" = replay ]; then
  # The bench binary's path, from cargo (built now unless SKIP_BUILD and it exists).
  REPLAY="$(cd "$ROOT" && CARGO_INCREMENTAL=0 CARGO_TARGET_DIR="$TARGET" \
    cargo bench -q -p vllm-benches --bench client_compare --no-run --message-format=json 2>/dev/null |
    "$VLLM_PY" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "client_compare":
        print(m["executable"])')"
  [ -x "$REPLAY" ] || die "could not build benches/client_compare (the replay server)"
fi
STAMP_FLAG=""
[ "${STAMP:-1}" = 1 ] && STAMP_FLAG="--stamp-events"

# --- the setup, for the report -------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
  echo "kernel: $(uname -r)"
  echo "vllm-rs: $("$VLLM_RS" --version 2>/dev/null | head -1), commit $(git -C "$ROOT" describe --always --dirty --abbrev=12)"
  echo "vllm: $("$VLLM_PY" -c 'import vllm; print(vllm.__version__)' 2>/dev/null | tail -1)"
  echo "openai-python: $("$VLLM_PY" -c 'import openai; print(openai.__version__)')"
  echo "aiohttp: $("$VLLM_PY" -c 'import aiohttp; print(aiohttp.__version__)')"
  echo "python: $("$VLLM_PY" -c 'import sys; print(sys.version.split()[0])')"
  echo "tokenizer: $TOKENIZER"
  echo "mock: --itl-ms $ITL_MS --ttft-ms 0 ${MOCK_FLAGS:-} $STAMP_FLAG on core $SERVER_CORE; clients on core $CLIENT_CORE${CLIENT_PRIO:+ under \"$CLIENT_PRIO\"}"
  [ "${RAW:-0}" = 1 ] && echo "raw server: $RAW_SERVER"
} >"$OUT/setup.txt"
cat "$OUT/setup.txt" >&2

# --- the mock ----------------------------------------------------------------------------
MOCK_PID=""
stop_mock() {
  if [ -n "$MOCK_PID" ]; then
    exec 9>&- 2>/dev/null || true
    kill "$MOCK_PID" 2>/dev/null || true
    wait "$MOCK_PID" 2>/dev/null || true
    MOCK_PID=""
  fi
}
trap stop_mock EXIT

# start_mock ITL_MS LOG: the mock (paced), or for ITL_MS 0 the raw server.
start_mock() {
  if [ "$1" = 0 ] && [ -n "$REPLAY" ]; then
    start_replay "$2"
    return
  fi
  local stamp=""
  [ "$1" != 0 ] && stamp="$STAMP_FLAG"
  BASE="http://127.0.0.1:$PORT"
  # shellcheck disable=SC2086 # MOCK_FLAGS is a list of flags
  taskset -c "$SERVER_CORE" "$MOCK" --port "$PORT" --itl-ms "$1" --ttft-ms 0 ${MOCK_FLAGS:-} $stamp >"$2" 2>&1 &
  MOCK_PID=$!
  for _ in $(seq 100); do
    curl -sf "$BASE/v1/models" >/dev/null 2>&1 && return 0
    kill -0 "$MOCK_PID" 2>/dev/null || die "the mock exited (see $2)"
    sleep 0.1
  done
  die "the mock did not answer on port $PORT"
}

# start_replay LOG: benches/client_compare's replay server (it picks its port and prints it,
# and runs until its stdin closes: a fifo held open by this script).
start_replay() {
  local fifo="$OUT/.replay-stdin"
  rm -f "$fifo"; mkfifo "$fifo"
  taskset -c "$SERVER_CORE" "$REPLAY" serve <"$fifo" >"$1" 2>&1 &
  MOCK_PID=$!
  exec 9>"$fifo"
  for _ in $(seq 100); do
    if grep -q '^PORT ' "$1" 2>/dev/null; then
      BASE="http://127.0.0.1:$(awk '/^PORT /{print $2; exit}' "$1")"
      return 0
    fi
    kill -0 "$MOCK_PID" 2>/dev/null || die "the replay server exited (see $1)"
    sleep 0.1
  done
  die "the replay server did not say its port"
}

# mock_cpu FILE: the mock's CPU seconds so far, as JSON.
mock_cpu() {
  local tick; tick=$(getconf CLK_TCK)
  awk -v t="$tick" '{ s = substr($0, index($0, ")") + 2); split(s, f, " ");
    printf "{\"mock_cpu_s\": %.3f}\n", (f[12] + f[13]) / t }' "/proc/$MOCK_PID/stat" >"$1"
}

# busy_ticks: the machine's busy CPU time so far (all cores), in clock ticks.
busy_ticks() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# wait_quiet: other work on the machine (another build, say) would skew every figure; wait up
# to QUIET_WAIT seconds [300] until the machine is at least 90% idle over a second.
wait_quiet() {
  local tick cores deadline b0 b1
  tick=$(getconf CLK_TCK); cores=$(nproc)
  deadline=$((SECONDS + ${QUIET_WAIT:-300}))
  while :; do
    b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
    if [ $(( (b1 - b0) * 10 )) -le $((tick * cores)) ]; then return 0; fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "the machine is still busy ($(( (b1 - b0) * 100 / tick ))% of a core), going on"
      return 0
    fi
    sleep 2
  done
}

prompts_for() {
  local var="PROMPTS_$1"
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  case "$1" in
    1) echo 4 ;; 256) echo 1024 ;; 1000) echo 3000 ;; *) echo $((3 * $1)) ;;
  esac
}

# run_tool TOOL C N DIR ITL
run_tool() {
  local tool=$1 c=$2 n=$3 dir=$4 itl=$5
  local stem="$dir/$tool-c$c"
  wait_quiet
  start_mock "$itl" "$stem.mock.log"
  local busy0; busy0=$(busy_ticks)
  log "$tool: concurrency $c, $n requests (mock itl $itl ms)"
  # shellcheck disable=SC2206 # CLIENT_PRIO is a command and its arguments
  local prio=(${CLIENT_PRIO:-})
  local pin=(taskset -c "$CLIENT_CORE" "${prio[@]}" "$VLLM_PY" "$PYDIR/rusage_run.py" "$stem.rusage.json" --)
  local rc=0 tpid=""
  if [ "${CAPTURE:-0}" = 1 ] && [ "$itl" != 0 ]; then
    taskset -c "$CLIENT_CORE" tcpdump -i lo -s 0 -B 131072 -w "$stem.pcap" \
      "tcp src port $PORT" 2>"$stem.tcpdump.log" &
    tpid=$!
    sleep 1
  fi
  case "$tool" in
    vllm-rs)
      "${pin[@]}" "$VLLM_RS" bench serve --base-url "$BASE/v1" --model echo \
        --backend openai-chat --endpoint /v1/chat/completions \
        --dataset-name random --random-input-len "$INPUT_LEN" --random-output-len "$OUTPUT_LEN" \
        --ignore-eos --num-prompts "$n" --max-concurrency "$c" --disable-tqdm \
        --save-result --result-dir "$dir" --result-filename "$tool-c$c.result.json" \
        --per-request "$stem.requests.jsonl" >"$stem.log" 2>&1 || rc=$?
      ;;
    vllm-bench)
      "${pin[@]}" "$VLLM_PY" "$PYDIR/vllm_launcher.py" bench serve \
        --backend openai-chat --endpoint /v1/chat/completions --base-url "$BASE" \
        --model echo --tokenizer "$TOKENIZER" \
        --dataset-name random --random-input-len "$INPUT_LEN" --random-output-len "$OUTPUT_LEN" \
        --ignore-eos --num-prompts "$n" --max-concurrency "$c" --disable-tqdm \
        --save-result --save-detailed --result-dir "$dir" \
        --result-filename "$tool-c$c.result.json" >"$stem.log" 2>&1 || rc=$?
      ;;
    openai-python)
      "${pin[@]}" "$VLLM_PY" "$PYDIR/stream_openai.py" --base-url "$BASE/v1" --model echo \
        --num-prompts "$n" --concurrency "$c" --input-len "$INPUT_LEN" \
        --output-len "$OUTPUT_LEN" --out "$stem.result.json" >"$stem.log" 2>&1 || rc=$?
      ;;
    *) die "unknown tool $tool" ;;
  esac
  if [ -n "$tpid" ]; then
    sleep 0.5
    kill -INT "$tpid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    "$VLLM_PY" "$PYDIR/pcap_lateness.py" "$stem.pcap" --port "$PORT" --itl-ms "$itl" \
      >"$stem.server-lateness.txt" 2>&1 || true
    [ "${KEEP_PCAP:-0}" = 1 ] || rm -f "$stem.pcap"
  fi
  mock_cpu "$stem.mock.json"
  # Everything the machine did meanwhile (mock, client and anything else), in CPU seconds.
  echo "{\"machine_busy_s\": $(( $(busy_ticks) - busy0 )).0, \"tick\": $(getconf CLK_TCK)}" >"$stem.machine.json"
  stop_mock
  [ "$rc" = 0 ] || log "$tool at concurrency $c exited with $rc (see $stem.log)"
}

# --- the paced runs ------------------------------------------------------------------------
PACED="$OUT/paced"
mkdir -p "$PACED"
for c in $CONCURRENCY; do
  n=$(prompts_for "$c")
  for tool in $TOOLS; do
    run_tool "$tool" "$c" "$n" "$PACED" "$ITL_MS"
  done
done

# --- raw capacity (optional) -----------------------------------------------------------------
# RAW_ROUNDS [3] rounds, the tools taking turns in each, so that a slow spell of the machine
# does not fall on one tool only; the report gives each round and the medians.
RAW_DIRS=()
if [ "${RAW:-0}" = 1 ]; then
  rc_=${RAW_CONCURRENCY:-256}
  for round in $(seq "${RAW_ROUNDS:-3}"); do
    RAWDIR="$OUT/raw/round$round"
    mkdir -p "$RAWDIR"
    RAW_DIRS+=("$RAWDIR")
    for tool in $TOOLS; do
      var="RAW_PROMPTS_${tool//-/_}"
      case "$tool" in vllm-rs) d=8192 ;; vllm-bench) d=2048 ;; *) d=256 ;; esac
      run_tool "$tool" "$rc_" "${!var:-$d}" "$RAWDIR" 0
    done
  done
fi

# --- the table -------------------------------------------------------------------------------
{
  if [ -n "${CONCURRENCY// /}" ]; then
    echo "### Paced: mock --itl-ms $ITL_MS, ${OUTPUT_LEN}-token streams"
    echo
    "$VLLM_PY" "$PYDIR/capacity_report.py" "$PACED" --itl-ms "$ITL_MS" \
      --concurrency "$(echo $CONCURRENCY | tr ' ' ',')" --json "$OUT/figures.json"
  fi
  if [ "${CAPTURE:-0}" = 1 ]; then
    echo
    echo "Server lateness from the capture (the mock's segment stamps, same runs):"
    echo
    for f in "$PACED"/*.server-lateness.txt; do
      [ -e "$f" ] || continue
      echo "- $(basename "$f" .server-lateness.txt): $(cat "$f"); tcpdump: $(grep -h 'dropped by kernel' "${f%.server-lateness.txt}.tcpdump.log" || true)"
    done
  fi
  if [ "${RAW:-0}" = 1 ]; then
    echo
    if [ "$RAW_SERVER" = replay ]; then
      echo "### Raw: unpaced, against the replay server (benches/client_compare), concurrency ${RAW_CONCURRENCY:-256}"
    else
      echo "### Raw: mock --itl-ms 0 (as fast as it goes), concurrency ${RAW_CONCURRENCY:-256}"
    fi
    echo
    "$VLLM_PY" "$PYDIR/capacity_report.py" "${RAW_DIRS[@]}" --itl-ms 0 --raw \
      --concurrency "${RAW_CONCURRENCY:-256}" --json "$OUT/figures-raw.json"
  fi
} | tee "$OUT/table.md"
