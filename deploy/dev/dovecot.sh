#!/usr/bin/env bash
# Runs a self-contained Dovecot under .demo/NAME on 127.0.0.1:PORT, from the same config
# template the tests use. Users come from .demo/NAME/users, master users from
# .demo/NAME/masters (passwd-file lines: login:{PLAIN}password).
#   deploy/dev/dovecot.sh start NAME PORT
#   deploy/dev/dovecot.sh stop NAME
#   deploy/dev/dovecot.sh status NAME
set -euo pipefail
cd "$(dirname "$0")/../.."
action=${1:?usage: dovecot.sh start|stop|status NAME [PORT]}
name=${2:?usage: dovecot.sh start|stop|status NAME [PORT]}
base="$PWD/.demo/$name"

case "$action" in
  start)
    port=${3:?usage: dovecot.sh start NAME PORT}
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "dovecot.sh: 127.0.0.1:$port is already in use" >&2
      exit 1
    fi
    mkdir -p "$base/run" "$base/state" "$base/mail"
    touch "$base/users" "$base/masters"
    chmod 755 "$base"
    chmod 777 "$base/mail"
    sed -e "s|@BASE@|$base|g" -e "s|@PORT@|$port|g" -e "s|@PREFIX@||g" -e "s|@SEPARATOR@|/|g" \
      -e "s|@SSL@|no|g" -e "s|@SSL_FILES@||g" -e "s|@TLS_PORT@|0|g" \
      deploy/dev/dovecot.conf.template >"$base/dovecot.conf"
    /usr/sbin/dovecot -c "$base/dovecot.conf"
    for _ in $(seq 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "dovecot $name listening on 127.0.0.1:$port (log: $base/dovecot.log)"
        exit 0
      fi
      sleep 0.1
    done
    echo "dovecot.sh: $name did not start; see $base/dovecot.log" >&2
    tail -n 20 "$base/dovecot.log" >&2 || true
    exit 1
    ;;
  stop)
    if [ -f "$base/dovecot.conf" ]; then
      /usr/sbin/dovecot -c "$base/dovecot.conf" stop 2>/dev/null || true
      pkill -f "$base/" 2>/dev/null || true
    fi
    ;;
  status)
    pgrep -f "$base/dovecot.conf" >/dev/null && echo "$name running" || echo "$name stopped"
    ;;
  *)
    echo "usage: dovecot.sh start|stop|status NAME [PORT]" >&2
    exit 2
    ;;
esac
