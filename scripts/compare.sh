#!/usr/bin/env bash
# compare.sh — the comparison run: builds the pushbench CLI once, runs
# `pushbench compare` (every argument is passed through) and says where the
# report is. Needs only Go.
#
#   scripts/compare.sh            default matrix, about 10 minutes on 2 cores
#   scripts/compare.sh --quick    the same shape, tiny, under 90 seconds
#   scripts/compare.sh --help     every flag
set -euo pipefail

caller=$PWD
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
usage: scripts/compare.sh [--quick] [pushbench compare flags] [--out DIR]

Builds the pushbench CLI once, runs `pushbench compare` with these arguments
and prints where the report is. Without --out the run goes to
results/runs/<UTC stamp>/ and results/latest points at it. Redraw a report
with `go run ./cmd/pushbench plot DIR`.

Examples:
  scripts/compare.sh --quick
  scripts/compare.sh --transports sse,ws --clients 10,100,1000 --out /tmp/push
  scripts/compare.sh --dry-run          # print the planned cells and the estimate

USAGE
}

command -v go >/dev/null 2>&1 || { echo "compare.sh: go not found in PATH (https://go.dev/dl/)" >&2; exit 1; }

# The CLI runs from the repository root (results/runs/ and the git commit
# are found there), so a relative --out is made absolute from the caller's
# folder. out is the report folder: --out, else the default's results/latest.
abspath() {
  case "$1" in
    /*) printf '%s' "$1" ;;
    *) printf '%s/%s' "$caller" "$1" ;;
  esac
}
out=results/latest
help=0
dry=0
want_out=0
args=()
for arg in "$@"; do
  if [ "$want_out" -eq 1 ]; then
    arg=$(abspath "$arg")
    out=$arg
    want_out=0
  else
    case "$arg" in
      --out|-out) want_out=1 ;;
      --out=*|-out=*) out=$(abspath "${arg#*=}"); arg="${arg%%=*}=$out" ;;
      -h|-help|--help) help=1 ;;
      -dry-run|--dry-run|-dry-run=true|--dry-run=true) dry=1 ;;
    esac
  fi
  args+=("$arg")
done

bindir=$(mktemp -d "${TMPDIR:-/tmp}/pushbench-compare.XXXXXX")
trap 'rm -rf "$bindir"' EXIT
start=$(date +%s)
echo "compare.sh: building the pushbench CLI" >&2
go build -o "$bindir/pushbench" ./cmd/pushbench

if [ "$help" -eq 1 ]; then
  usage
  "$bindir/pushbench" compare --help
  exit 0
fi

rc=0
"$bindir/pushbench" compare ${args[@]+"${args[@]}"} || rc=$?

took=$(( $(date +%s) - start ))
if [ "$dry" -eq 0 ] && [ "$rc" -ne 2 ] && [ -s "$out/index.html" ]; then
  printf 'compare.sh: %dm%02ds with the build; report: %s/index.html\n' $((took / 60)) $((took % 60)) "$out"
fi
exit "$rc"
