#!/bin/sh
# band postinstall (deb: "configure OLDVERSION"; rpm: $1 = 1 install, 2 upgrade).
set -e
mkdir -p /etc/band/jail.d /var/lib/band
chmod 0750 /var/lib/band
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	upgrade=
	case "$1" in
	configure) [ -n "$2" ] && upgrade=1 ;;
	2) upgrade=1 ;;
	esac
	if [ -n "$upgrade" ]; then
		systemctl try-restart band.service >/dev/null 2>&1 || true
	else
		echo "band: edit /etc/band/band.toml, then: systemctl enable --now band" >&2
	fi
fi
exit 0
