#!/usr/bin/env bash
# Builds every fuzz target under fuzz/ and runs each for DURATION (e.g. 30s, 10m, 1h); fails on
# the first finding, whose input libFuzzer leaves in fuzz/artifacts/<target>/ (replay it with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> <file>`). Installs cargo-fuzz when missing.
#
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
# The sanitizer is off (`-s none`): the fuzzed code is safe Rust, so AddressSanitizer would
# find nothing the panics and assertions do not, and it doubles the build. Debug assertions are
# on (`-a`), so arithmetic overflow is a finding too.
#
# Each run starts from the seeds kept in fuzz/seeds/<target>/ and grows a scratch corpus in
# fuzz/corpus/<target>/ (ignored by git), so runs on one machine build on each other.
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=${1:?usage: deploy/dev/fuzz.sh DURATION (e.g. 20s, 10m, 1h)}
case "$duration" in
  *h) seconds=$(( ${duration%h} * 3600 )) ;;
  *m) seconds=$(( ${duration%m} * 60 )) ;;
  *s) seconds=${duration%s} ;;
  *) seconds=$duration ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
fuzz_flags=(--sanitizer none --debug-assertions)

cargo fuzz build "${fuzz_flags[@]}"
for target in $(cargo fuzz list); do
  echo "fuzz: $target for ${seconds}s"
  mkdir -p "fuzz/corpus/$target"
  log="fuzz/corpus/$target.log"
  if ! cargo fuzz run "${fuzz_flags[@]}" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
    -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target found a failing input (see fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
done
echo "fuzz: every target ran ${seconds}s without a finding"
