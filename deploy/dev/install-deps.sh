#!/usr/bin/env bash
# Installs what mailfleet's demo and tests need from Debian's packages: Dovecot's IMAP server,
# and openssl for the TLS tests' certificates.
# Idempotent and quick when everything is there. Our Dovecot instances run from their own
# config (deploy/dev/dovecot.conf.template); the system's Dovecot service is not used.
set -euo pipefail

need=()
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
command -v pkill >/dev/null 2>&1 || need+=(procps)
command -v openssl >/dev/null 2>&1 || need+=(openssl) # test certificates for TLS tests
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
