#!/usr/bin/env bash
# A real migration on the embedded default, from nothing: installs Dovecot, builds mailfleet,
# starts a source (127.0.0.1:10143) and a target (127.0.0.1:10144) Dovecot, seeds three
# mailboxes with realistic mail, migrates them, re-runs to show nothing is copied twice, and
# prints where the report is. Servers are stopped on exit; everything lives in .demo/.
# Ports: DEMO_SOURCE_PORT / DEMO_TARGET_PORT. Size: DEMO_MESSAGES (per mailbox, default 300).
# DEMO_KEEP_SERVERS=1 leaves both servers running (README's "A provider's first hour" uses them);
# `deploy/dev/dovecot.sh stop source` and `... stop target` stop them.
set -euo pipefail
cd "$(dirname "$0")/../.."

source_port=${DEMO_SOURCE_PORT:-10143}
target_port=${DEMO_TARGET_PORT:-10144}
messages=${DEMO_MESSAGES:-300}
users=(alice@example.com:alice-demo-pw bob@example.com:bob-demo-pw carol@example.com:carol-demo-pw)

deploy/dev/install-deps.sh
cargo build --release --quiet -p mailfleet -p loadtest

deploy/dev/dovecot.sh stop source || true
deploy/dev/dovecot.sh stop target || true
rm -rf .demo
for server in source target; do
  mkdir -p ".demo/$server"
  for user in "${users[@]}"; do echo "${user%%:*}:{PLAIN}${user#*:}" >>".demo/$server/users"; done
  echo "admin:{PLAIN}admin-demo-pw" >".demo/$server/masters"
done
if [[ ${DEMO_KEEP_SERVERS:-0} != 1 ]]; then
  trap 'deploy/dev/dovecot.sh stop source; deploy/dev/dovecot.sh stop target' EXIT
fi
deploy/dev/dovecot.sh start source "$source_port"
deploy/dev/dovecot.sh start target "$target_port"

seed_args=()
for user in "${users[@]}"; do seed_args+=(--user "$user"); done
target/release/loadtest seed --port "$source_port" --messages "$messages" "${seed_args[@]}"

echo "EmailAddress,UserName,Password" >.demo/users.csv
for user in "${users[@]}"; do echo "${user%%:*},${user%%:*},${user#*:}" >>.demo/users.csv; done

echo
echo "== mailfleet migrate"
target/release/mailfleet migrate --csv .demo/users.csv \
  --source "imap://127.0.0.1:$source_port" --target "imap://127.0.0.1:$target_port" \
  --state-dir .demo/state

echo
echo "== the same command again: every message is found on the target, none copied twice"
target/release/mailfleet migrate --csv .demo/users.csv \
  --source "imap://127.0.0.1:$source_port" --target "imap://127.0.0.1:$target_port" \
  --state-dir .demo/state --json >.demo/report.json
grep -E '"(email|status|items_synced|items_copied)"' .demo/report.json
echo
echo "Report: .demo/report.json"
