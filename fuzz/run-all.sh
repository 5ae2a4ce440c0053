#!/usr/bin/env bash
# Runs every fuzz target, one after the other (one process at a time), for
# SECONDS each (default 60). Logs go to fuzz/logs/<target>.log (git-ignored).
# Usage: fuzz/run-all.sh [SECONDS] [extra libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
mkdir -p logs
for target in $(cargo +nightly fuzz list); do
  echo "== $target (${secs}s)"
  cargo +nightly fuzz run "$target" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 "$@" 2>&1 | tee "logs/$target.log" | grep -E '^#[0-9]+ +DONE|stat::number_of_executed_units|ERROR|panicked' || true
  if grep -q -E 'ERROR: libFuzzer|panicked' "logs/$target.log"; then
    echo "!! $target found a crash: see fuzz/logs/$target.log and fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
