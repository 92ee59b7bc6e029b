#!/bin/sh
# band preremove (deb: "remove" or "upgrade NEWVERSION"; rpm: $1 = 0 erase, 1 upgrade).
# Bans already in the kernel stay there and expire on their own.
set -e
case "$1" in
remove|0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now band.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
