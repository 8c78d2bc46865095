#!/usr/bin/env bash
# Builds Alertmanager and amtool (the version the compose stack deploys) from the Go module proxy
# into DIR (default bin/), for the tests: make alertmanager.
#
#   tools/alertmanager/build.sh [DIR]
#
# The module does not carry the web UI's built assets (ui/app/dist, made by npm), which
# ui/web.go embeds, so `go build` of the module as served fails. This script builds a copy of the
# module's source from the module cache with a one-page placeholder in their place (ui-stub.html),
# through a replace directive in a temporary copy of go.mod: the committed go.mod and go.sum stay
# as they are, and every other dependency is the one they pin. The API (/api/v2, /-/ready), which
# the tests use, is complete; the UI of the deployed image is the real one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-bin}" && cd "${1:-bin}" && pwd)
cd "$here"
mod=github.com/prometheus/alertmanager
modver=$(go list -m -f '{{.Version}}' "$mod")
src=$(go mod download -json "$mod@$modver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "alertmanager: no module source for $mod@$modver (go mod download)" >&2; exit 1; }
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -R "$src" "$work/alertmanager"
chmod -R u+w "$work/alertmanager"
for d in elm mantine; do
  mkdir -p "$work/alertmanager/ui/app/dist/$d"
  cp "$here/ui-stub.html" "$work/alertmanager/ui/app/dist/$d/index.html"
done
cp go.mod go.sum "$work/"
cd "$work"
go mod edit -replace "$mod=./alertmanager"
pkg=github.com/prometheus/common/version
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X $pkg.Version=${modver#v} -X $pkg.Revision=$modver -X $pkg.Branch=module -X $pkg.BuildUser=loteria" \
  -o "$out/" "$mod/cmd/alertmanager" "$mod/cmd/amtool"
"$out/alertmanager" --version | head -1
