#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for SECONDS each, seeded from the real
# server captures in crates/vllm-types/tests/fixtures/, and prints per target the runs, the
# corpus size and any crash. Needs a nightly toolchain and cargo-fuzz (installed here when
# missing); without nightly it says so and exits 0, the bounded versions of the same targets
# running in `cargo test` anyway.
#
#   scripts/fuzz.sh SECONDS [TARGET...]      default: every target
#
# Environment: FUZZ_JOBS targets at once (default 1; 2 on two cores), FUZZ_RSS_MB the memory
# limit (default 2048). A crash leaves its input in fuzz/artifacts/TARGET/ and fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(sse http_response chat_stream error_body)

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain (rustup toolchain install nightly): skipped; cargo test runs the bounded targets"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

fixtures=crates/vllm-types/tests/fixtures
# Seeds: the first byte of each input is the number of cut sizes that follow (0: whole).
seed() {
  local target=$1 dir=fuzz/corpus/$1 f
  mkdir -p "$dir"
  case "$target" in
    sse | chat_stream)
      for f in "$fixtures"/*/*.sse; do
        { printf '\0'; cat "$f"; } >"$dir/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
        { printf '\3\7\1\x20'; cat "$f"; } >"$dir/seed-cut-$(basename "$(dirname "$f")")-$(basename "$f")"
      done
      ;;
    http_response)
      for f in "$fixtures"/*/*.http; do
        { printf '\0'; cat "$f"; } >"$dir/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
      done
      ;;
    error_body)
      for f in "$fixtures"/*/err_*.http; do
        # The status bytes, then the body (after the blank line).
        { printf '\0\0'; sed '1,/^\r\{0,1\}$/d' "$f"; } >"$dir/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
      done
      ;;
  esac
}

run() {
  local target=$1 log=fuzz/$1.log
  seed "$target"
  if ! (cd fuzz && cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -timeout=10 -print_final_stats=1) >"$log" 2>&1; then
    echo "fuzz $target: FAILED (see $log and fuzz/artifacts/$target/)"
    tail -n 30 "$log"
    return 1
  fi
  local runs corpus
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
  echo "fuzz $target: ${seconds} s, ${runs:-?} runs, corpus $corpus inputs, 0 crashes"
}

(cd fuzz && cargo +nightly fuzz build >/dev/null)
status=0
jobs=${FUZZ_JOBS:-1}
pids=()
for target in "${targets[@]}"; do
  run "$target" &
  pids+=($!)
  if ((${#pids[@]} >= jobs)); then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
exit "$status"
