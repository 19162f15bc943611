#!/usr/bin/env bash
# Distributed mode on this machine: N `mailfleet worker` processes plus `mailfleet coordinator`,
# all on the local RabbitMQ (127.0.0.1:5672) and Redis
# (127.0.0.1:6379). The workers stop (SIGTERM, finishing their tasks) when the run ends.
#   deploy/dev/fleet.sh WORKERS --csv FILE --source URL --target URL [other coordinator options]
# Environment (defaults shown): MAILFLEET_QUEUE=rabbitmq://guest:guest@127.0.0.1:5672/%2f,
# MAILFLEET_CHECKPOINTS=redis://127.0.0.1:6379, MAILFLEET_SECRET_KEY (generated into
# .demo/fleet.key when unset).
set -euo pipefail
cd "$(dirname "$0")/../.."
workers=${1:?usage: fleet.sh WORKERS --csv FILE --source URL --target URL [coordinator options]}
shift

deploy/dev/install-deps.sh
cargo build --release --quiet -p mailfleet
export MAILFLEET_QUEUE=${MAILFLEET_QUEUE:-rabbitmq://guest:guest@127.0.0.1:5672/%2f}
export MAILFLEET_CHECKPOINTS=${MAILFLEET_CHECKPOINTS:-redis://127.0.0.1:6379}
if [ -z "${MAILFLEET_SECRET_KEY:-}" ]; then
  mkdir -p .demo
  [ -s .demo/fleet.key ] || (umask 077 && openssl rand -base64 32 >.demo/fleet.key)
  MAILFLEET_SECRET_KEY=$(cat .demo/fleet.key)
  export MAILFLEET_SECRET_KEY
fi

pids=()
stop_workers() {
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop_workers EXIT
for _ in $(seq "$workers"); do
  target/release/mailfleet worker &
  pids+=($!)
done
echo "fleet: $workers workers started (${pids[*]})" >&2
target/release/mailfleet coordinator "$@"
