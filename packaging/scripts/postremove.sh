#!/bin/sh
# band postremove (deb: "remove", "purge", "upgrade"…; rpm: $1 = 0 erase, 1 upgrade).
# Purging a .deb also removes band's state; rpm keeps it, as rpm has no purge.
set -e
case "$1" in
purge)
	rm -rf /var/lib/band /run/band
	rmdir /etc/band/jail.d /etc/band 2>/dev/null || true
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
