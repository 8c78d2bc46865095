#!/bin/sh
# Usage: deploy/generar-compose.sh <output-file> <agencies> [generar-compose flags...]
# Writes a Docker Compose file for <agencies> agencies (as the original exercise's script did),
# plus the agencies' config files and Prometheus targets. Extra flags go to the generator, e.g.
#   deploy/generar-compose.sh docker-compose-dev.yaml 5 --data-dir ../shared/datasets/tp0
# Relative paths in flags are taken from the repository root.
set -eu

if [ "$#" -lt 2 ]; then
	echo "usage: $0 <output-file> <agencies> [flags...]" >&2
	exit 2
fi
out=$1
agencies=$2
shift 2

case $out in
/*) ;;
*) out="$(pwd)/$out" ;;
esac

cd "$(dirname "$0")/.."
exec go run ./deploy/cmd/generar-compose --output "$out" --agencies "$agencies" "$@"
