#!/usr/bin/env bash
# bench.sh — runs the Go benchmarks with -count, for benchstat, and writes
# them to one file. Needs only Go (benchstat to compare:
# go install golang.org/x/perf/cmd/benchstat@latest).
#
#   scripts/bench.sh                                   every benchmark, -count 6
#   scripts/bench.sh -count 6 -bench BenchmarkDelivery   the transports only
#   scripts/bench.sh -o old.txt                        then, after a change: -o new.txt
#   benchstat -col /transport results/runs/bench-<stamp>.txt
#   benchstat old.txt new.txt
set -euo pipefail

cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: scripts/bench.sh [-count N] [-bench REGEX] [-benchtime D] [-pkg PKGS] [-large] [-o FILE]

Runs `go test -run '^$' -bench REGEX -count N` in each package of PKGS and
writes the output, in Go's benchmark format, to FILE (default
results/runs/bench-<UTC stamp>.txt, git-ignored). The file starts with the
commit and the unit metadata benchstat needs ("Unit deliveries/s
better=higher"), so that it reads deliveries/s as higher-is-better.

  -count N       runs of each benchmark (default 6: benchstat wants >= 6 for
                 a confidence interval)
  -bench REGEX   which benchmarks (default .: all)
  -benchtime D   go test -benchtime (default: go test's 1s)
  -pkg PKGS      space-separated packages (default: the ones with benchmarks)
  -large         also BenchmarkDelivery with 1000 clients
                 (-pushbench.large; bench package only)
  -o FILE        output file

Compare:
  benchstat -col /transport FILE     transports side by side, one run
  benchstat old.txt new.txt          two runs (e.g. before and after a change)
EOF
}

count=6
bench=.
benchtime=
large=0
out=
pkgs="./bench/ ./event/ ./servers/ ./clients/ ./results/"
while [ $# -gt 0 ]; do
  case "$1" in
    -count|--count) count=${2:?-count needs a value}; shift 2 ;;
    -bench|--bench) bench=${2:?-bench needs a value}; shift 2 ;;
    -benchtime|--benchtime) benchtime=${2:?-benchtime needs a value}; shift 2 ;;
    -pkg|--pkg) pkgs=${2:?-pkg needs a value}; shift 2 ;;
    -large|--large) large=1; shift ;;
    -o|--o|-out|--out) out=${2:?-o needs a value}; shift 2 ;;
    -h|-help|--help) usage; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$count" in ''|*[!0-9]*|0) echo "bench.sh: -count $count: want a positive whole number" >&2; exit 2 ;; esac

command -v go >/dev/null 2>&1 || { echo "bench.sh: go not found in PATH (https://go.dev/dl/)" >&2; exit 1; }

if [ -z "$out" ]; then
  mkdir -p results/runs
  out=results/runs/bench-$(date -u +%Y%m%dT%H%M%SZ).txt
else
  mkdir -p "$(dirname "$out")"
fi

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then
  commit="$commit+dirty"
fi
{
  echo "commit: $commit"
  echo "Unit deliveries/s better=higher"
} >"$out"

start=$(date +%s)
rc=0
for pkg in $pkgs; do
  args=(-run '^$' -bench "$bench" -count "$count")
  [ -n "$benchtime" ] && args+=(-benchtime "$benchtime")
  # -pushbench.large is a flag of the bench package's test binary only.
  if [ "$large" -eq 1 ] && [ "$pkg" = ./bench/ ]; then
    args+=(-args -pushbench.large)
  fi
  echo "bench.sh: go test $pkg ${args[*]}" >&2
  go test "$pkg" "${args[@]}" | tee -a "$out" || rc=$?
done

took=$(( $(date +%s) - start ))
printf 'bench.sh: %dm%02ds; results: %s\n' $((took / 60)) $((took % 60)) "$out" >&2
printf 'bench.sh: compare with: benchstat -col /transport %s\n' "$out" >&2
exit "$rc"
