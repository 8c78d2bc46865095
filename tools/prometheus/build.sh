#!/usr/bin/env bash
# Builds Prometheus and promtool (the 3.x line the compose stack deploys) from the Go module
# proxy into DIR (default bin/), for the tests: make prometheus.
#
#   tools/prometheus/build.sh [DIR]
#
# The version is the one go.mod here requires (github.com/prometheus/prometheus v0.3MM.P is
# Prometheus 3.MM.P); the binaries report it (prometheus --version). Built without the web UI's
# assets, which are not part of the Go module: the HTTP API, which the tests use, is complete.
# Built with -tags remove_all_sd: only the file and HTTP service discoveries (and static
# targets), which is all the tests and the stack use; the cloud SDKs of the others are most of
# the build (2 min instead of about 14 on a cold 2-core machine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-bin}" && cd "${1:-bin}" && pwd)
cd "$here"
modver=$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus)
# v0.316.0 -> 3.16.0, v0.305.1 -> 3.5.1
version=$(sed -E 's/^v0\.3(0?)([0-9]+)\.([0-9]+)$/3.\2.\3/' <<<"$modver")
pkg=github.com/prometheus/common/version
CGO_ENABLED=0 go build -trimpath -tags remove_all_sd \
  -ldflags "-s -w -X $pkg.Version=$version -X $pkg.Revision=$modver -X $pkg.Branch=module -X $pkg.BuildUser=loteria" \
  -o "$out/" github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
"$out/prometheus" --version | head -1
