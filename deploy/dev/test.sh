#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (Dovecot), then
# format check, clippy with warnings as errors, every test (nextest, in parallel), then every fuzz
# target for 20 seconds (deploy/dev/fuzz.sh; about 4 minutes with its build on 2 cores).
# Tests start their own Dovecot servers on loopback ports; nothing on the machine is changed
# beyond the installed packages.
set -euo pipefail
cd "$(dirname "$0")/../.."

deploy/dev/install-deps.sh
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --no-fail-fast
deploy/dev/fuzz.sh 20s
