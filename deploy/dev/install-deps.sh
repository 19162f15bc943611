#!/usr/bin/env bash
# Installs what mailfleet's demo and tests need from Debian's packages, and starts what must be
# running. Idempotent and quick when everything is there.
#  - dovecot-imapd: tests and the demo run their own Dovecot instances from
#    deploy/dev/dovecot.conf.template; the system's Dovecot service is not used.
#  - openssl: self-signed certificates for the TLS tests.
#  - dnsmasq-base: the DNS server the MX-check test serves its test zone from.
#  - isync: mbsync, the rival `loadtest bench single` and `bench fleet` measure mailfleet
#    against (no test needs it).
#  - aiosmtpd (Python): the real SMTP server the notification test delivers to; from PyPI
#    when python3 has pip, else Debian's python3-aiosmtpd.
#  - chromium and chromium-driver: the dashboard's test drives a real headless Chromium through
#    WebDriver (/usr/bin/chromedriver, /usr/bin/chromium).
#  - Redis on 127.0.0.1:6379 and RabbitMQ on 127.0.0.1:5672 (guest/guest) for the distributed
#    backends' tests: used as they are when something already listens there, else installed
#    and started in the background.
#  - PostgreSQL on 127.0.0.1:5432 for the PostgreSQL state store's tests (user postgres, trust
#    auth over loopback TCP, a database `test` from which each test creates and drops its
#    own): used as it is when something already listens there (CI has one), else Debian's
#    cluster is installed, opened to loopback trust and started.
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need=()
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
command -v pkill >/dev/null 2>&1 || need+=(procps)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v mbsync >/dev/null 2>&1 || need+=(isync)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
has_aiosmtpd() { python3 -c 'import aiosmtpd' 2>/dev/null; }
if ! has_aiosmtpd && ! python3 -m pip --version >/dev/null 2>&1; then need+=(python3-aiosmtpd); fi
if ! listening 6379 && ! command -v redis-server >/dev/null 2>&1; then need+=(redis-server); fi
if ! listening 5672 && ! command -v rabbitmq-server >/dev/null 2>&1; then need+=(rabbitmq-server); fi
if ! listening 5432 && ! command -v pg_ctlcluster >/dev/null 2>&1; then need+=(postgresql); fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! has_aiosmtpd; then
  echo "install-deps: installing aiosmtpd from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore aiosmtpd
fi

if ! listening 6379; then
  echo "install-deps: starting redis-server on 127.0.0.1:6379" >&2
  $sudo redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
if ! listening 5672; then
  echo "install-deps: starting rabbitmq-server on 127.0.0.1:5672" >&2
  $sudo rabbitmq-server -detached
fi
if ! listening 5432; then
  echo "install-deps: starting PostgreSQL on 127.0.0.1:5432 (trust auth over loopback)" >&2
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  [ -d "/etc/postgresql/$version/main" ] || $sudo pg_createcluster "$version" main
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  # pg_hba.conf is read top down, first match wins: loopback TCP trusted before any other rule.
  if ! $sudo grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    $sudo sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  $sudo pg_ctlcluster "$version" main start
  for _ in $(seq 60); do listening 5432 && break; sleep 1; done
  if ! psql -h 127.0.0.1 -U postgres -w -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -w -qc 'CREATE DATABASE test'
  fi
fi
for port in 6379 5672 5432; do
  for _ in $(seq 120); do listening "$port" && break; sleep 1; done
  listening "$port" || { echo "install-deps: nothing listens on 127.0.0.1:$port" >&2; exit 1; }
done
