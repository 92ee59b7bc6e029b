#!/usr/bin/env bash
# CI, after `make test`, as root on a Debian machine: builds the .deb and
# .rpm, installs the .deb with dpkg, checks what an operator would run
# (band --version, band --check against the installed config, bandctl --help,
# the man pages, the conffile, the unit with systemd-analyze), then purges
# the package and checks nothing is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "ci-package: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (it installs and purges the band package)"

export DEBIAN_FRONTEND=noninteractive
need=""
command -v man >/dev/null || need="$need man-db"
command -v systemd-analyze >/dev/null || need="$need systemd"
if [ -n "$need" ]; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends $need
fi
if dpkg -s band >/dev/null 2>&1; then
	fail "a band package is already installed; refusing to replace it"
fi

make package
deb=$(ls -t dist/band_*.deb | head -1)
rpm=$(ls -t dist/band-*.rpm | head -1)
echo "ci-package: built $deb and $rpm"
trap 'dpkg --purge band >/dev/null 2>&1 || true' EXIT

dpkg -i "$deb"
ver=$(band --version)
echo "ci-package: $ver"
[[ $ver == "band "* ]] || fail "band --version printed $ver"
band --check --config /etc/band/band.toml
bandctl --help >/dev/null
bandctl check --config /etc/band/band.toml
cmp /etc/band/band.toml config/default.toml || fail "/etc/band/band.toml is not the embedded default"
[ -d /etc/band/jail.d ] || fail "/etc/band/jail.d missing"
[ -d /var/lib/band ] || fail "/var/lib/band missing"
bash -n /usr/share/bash-completion/completions/bandctl
[ -s /usr/share/zsh/vendor-completions/_bandctl ] || fail "zsh completion missing"

# Man pages render, from the paths installed (man -l) and by name.
extract=""
for page in man8/band.8 man8/bandctl.8 man5/band.toml.5; do
	f=/usr/share/man/$page
	if [ ! -e "$f" ] && grep -rqs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/; then
		# This image tells dpkg not to install man pages: render them from the package.
		[ -n "$extract" ] || { extract=$(mktemp -d); dpkg-deb -x "$deb" "$extract"; }
		f=$extract$f
	fi
	out=$(MANWIDTH=80 man -l "$f" 2>&1 >/dev/null) || fail "man -l $f failed: $out"
	[ -z "$out" ] || fail "man -l $f warned: $out"
	MANWIDTH=80 man -l "$f" | grep -q "^NAME" || fail "man -l $f rendered no NAME section"
done
[ -z "$extract" ] && { man -w band >/dev/null && man -w 5 band.toml >/dev/null || fail "man cannot find the pages by name"; }
[ -n "$extract" ] && rm -rf "$extract"

# /etc/band/band.toml is a conffile (kept on upgrade, asked about if edited).
dpkg-query -W -f='${Conffiles}\n' band | grep -q '^ /etc/band/band.toml ' || fail "/etc/band/band.toml is not a conffile"

# The installed unit: verify (with the installed binary and man pages) and
# the sandbox's exposure score.
systemd-analyze verify /usr/lib/systemd/system/band.service
score=$(systemd-analyze security --offline=true --no-pager /usr/lib/systemd/system/band.service | sed -n 's/.*Overall exposure level for band.service: \([0-9.]*\).*/\1/p')
echo "ci-package: systemd-analyze security exposure $score"
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 3.0) }' || fail "exposure $score, want at most 3.0"

# Upgrade keeps an edited band.toml: reinstall over itself after an edit.
echo "# local edit" >>/etc/band/band.toml
dpkg -i --force-confold "$deb" >/dev/null
tail -1 /etc/band/band.toml | grep -q '^# local edit$' || fail "reinstall replaced the edited /etc/band/band.toml"

dpkg --purge band
trap - EXIT
for p in /usr/sbin/band /usr/bin/bandctl /etc/band /var/lib/band /usr/lib/systemd/system/band.service \
	/usr/share/man/man8/band.8 /usr/share/man/man8/bandctl.8 /usr/share/man/man5/band.toml.5 \
	/usr/share/bash-completion/completions/bandctl /usr/share/zsh/vendor-completions/_bandctl; do
	[ ! -e "$p" ] || fail "$p left behind after dpkg --purge"
done
dpkg -s band >/dev/null 2>&1 && fail "band still known to dpkg after purge"
echo "ci-package: OK ($deb installed, checked, purged)"
