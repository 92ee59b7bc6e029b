#!/bin/sh
# Installs the system packages band's tests use: nftables, iptables and ipset
# for the firewall tests (run in network namespaces of their own), iproute2
# for the namespaces, and apache2 with apache2-utils (htpasswd) for the
# end-to-end scenario in e2e/, which runs its own Apache inside a namespace.
# Without root it only says what is missing: the tests that need these skip.
set -eu
pkgs="nftables iptables ipset iproute2 apache2 apache2-utils"
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
# The tests need Apache's binary, not its service: unless the machine has a
# policy of its own, keep the packages from starting daemons on the host.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
