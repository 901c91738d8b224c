#!/bin/sh
# Installs the Debian packages the tests use (as root; does nothing for
# what is already there); rsyslog with its TLS and RELP modules is the
# receiver logforward's tests ship to, Redis and nats-server (JetStream)
# the receivers of its Redis and NATS drains (VictoriaLogs, the receiver of
# its HTTP drains, is built by scripts/victorialogs.sh when a test needs it). QEMU, the guest kernel and busybox
# are fetched by tools/vmtest on first use.
set -eu
need=""
command -v logger >/dev/null 2>&1 || need="$need bsdutils"
command -v unshare >/dev/null 2>&1 || need="$need util-linux"
command -v debugfs >/dev/null 2>&1 || need="$need e2fsprogs"
command -v busybox >/dev/null 2>&1 || need="$need busybox"
command -v python3 >/dev/null 2>&1 || need="$need python3"
for p in rsyslog rsyslog-gnutls rsyslog-openssl rsyslog-relp redis-server redis-tools nats-server; do
	dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing$need; run as root or install them" >&2
	exit 1
fi
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $need
