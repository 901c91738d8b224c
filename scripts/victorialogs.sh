#!/bin/sh
# Builds VictoriaLogs (the test receiver of logforward's HTTP drains, see
# ../shared/design/RECEIVERS.md) once into .cache/bin and prints its path.
# Tests call it; a second call returns at once.
set -eu
VERSION=v1.52.1
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.cache/bin"
out="$bin/victoria-logs-$VERSION"
if [ -x "$out" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$bin"
lock="$bin/.victoria-logs.lock"
# One build at a time (parallel test packages may all ask).
exec 9>"$lock"
flock 9
if [ ! -x "$out" ]; then
	tmp=$(mktemp -d "$bin/.build.XXXXXX")
	# Outside any module, as `go install pkg@version` requires.
	(cd "$tmp" && GOBIN="$tmp" GOFLAGS=-trimpath CGO_ENABLED=0 go install \
		"github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VERSION") >&2
	mv "$tmp/victoria-logs" "$out"
	rm -rf "$tmp"
fi
echo "$out"
