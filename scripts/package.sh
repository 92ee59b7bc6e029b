#!/usr/bin/env bash
# Builds band's .deb and .rpm into dist/ with nfpm (a Go tool pinned in
# packaging/tools/go.mod, built from source), versioned from git:
#   v1.2.3            -> 1.2.3
#   v1.2.3-4-gabc1234 -> 1.2.3+git4.abc1234
#   abc1234 (no tag)  -> 0.0.0~gitabc1234
# with ".dirty" appended when the tree has changes. VERSION overrides it.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

describe=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
pkgversion() {
	local d=$1 dirty=
	if [[ $d == *-dirty ]]; then dirty=.dirty; d=${d%-dirty}; fi
	d=${d#v}
	if [[ $d =~ ^[0-9a-f]{7,40}$ ]]; then
		echo "0.0.0~git$d$dirty"
	elif [[ $d =~ ^([0-9][0-9A-Za-z.]*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		echo "${BASH_REMATCH[1]}+git${BASH_REMATCH[2]}.${BASH_REMATCH[3]}$dirty"
	elif [[ $d =~ ^[0-9][0-9A-Za-z.]*$ ]]; then
		echo "$d${dirty:++git$dirty}"
	else
		echo "0.0.0~git${d//[^0-9A-Za-z.]/.}$dirty" # a tag that is not a version
	fi
}
export VERSION=${VERSION:-$(pkgversion "$describe")}
export ARCH=${ARCH:-$($GO env GOARCH)}

stage=build/package
rm -rf "$stage" && mkdir -p "$stage" dist
CGO_ENABLED=0 GOARCH=$ARCH $GO build -trimpath \
	-ldflags "-s -w -X github.com/band-project/band/buildinfo.version=$describe" \
	-o "$stage/" ./cmd/band ./cmd/bandctl
# The installed band.toml is the embedded default, byte for byte.
cp config/default.toml "$stage/band.toml"
$GO run ./cmd/bandctl completion bash >"$stage/bandctl.bash"
$GO run ./cmd/bandctl completion zsh >"$stage/_bandctl"

(cd packaging/tools && $GO build -o ../../build/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm)
for p in deb rpm; do
	build/nfpm package --config packaging/nfpm.yaml --packager "$p" --target dist/
done
