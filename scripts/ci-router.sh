#!/usr/bin/env bash
# The router tests: installs vLLM's router from PyPI (once; reused from the cache dir), then
# runs `cargo test -p vllm-cli --test router` with VLLM_ROUTER pointing at it. The tests start
# their own vllm-mock replicas and routers on free loopback ports and stop them.
#
#   scripts/ci-router.sh [extra cargo test arguments, e.g. -- --nocapture]
#
# Environment: VLLM_RS_CACHE and VLLM_RS_PYTHON as for scripts/vllm-router.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/vllm-router.sh install || bash scripts/vllm-router.sh install
VLLM_ROUTER=$(bash scripts/vllm-router.sh path) \
  cargo test -p vllm-cli --locked --test router "$@"
