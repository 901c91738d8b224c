#!/bin/sh
# Local demo: memlogd with chatty writers passed the LinuxKit way, shown by logread -F.
set -e
cd "$(dirname "$0")/.."
exec go run ./tools/demo -bin bin "$@"
