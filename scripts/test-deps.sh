#!/bin/sh
# Installs the system packages band's tests use: nftables, iptables and ipset
# for the firewall tests (run in network namespaces of their own), iproute2
# for the namespaces. Without root it only says what is missing: the tests
# that need these skip.
set -eu
pkgs="nftables iptables ipset iproute2"
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: missing$missing; install them as root (apt-get install -y$missing) or their tests skip" >&2
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
