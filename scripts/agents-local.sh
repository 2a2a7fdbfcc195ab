#!/usr/bin/env bash
# agents-local.sh — a multi-host run on one machine: the server and N
# load-generator agents, each agent in a network namespace of its own with
# its own address (veth pairs on a bridge), so that each has its own ports
# and its own open-files budget, as on separate hosts; then one merged cell
# (`pushbench run --agents`) and, for comparison, the same cell from one
# load generator. Needs root (ip netns) and Go.
#
#   sudo scripts/agents-local.sh                      2 agents × 1,000 WebSocket clients
#   sudo scripts/agents-local.sh --agents 3 --clients 3000 --transport sse
#   sudo scripts/agents-local.sh --skew 30ms          the last agent's clock reads 30 ms ahead
#
# Everything it starts (server, agents, namespaces, bridge) is removed on
# exit, Ctrl-C included. Traffic stays on the bridge it creates.
set -euo pipefail

caller=$PWD
cd "$(dirname "$0")/.."

command="scripts/agents-local.sh${*:+ $*}"
agents=2 clients=2000 transport=ws rate=10 payload=64 duration=10s warmup=1s
skew="" out="" baseline=1 connect_rate=1000 compare=0
usage() {
  cat <<'USAGE'
usage: scripts/agents-local.sh [--agents N] [--clients N] [--transport T] [--rate R]
                               [--payload B] [--duration D] [--warmup D] [--connect-rate R]
                               [--skew D] [--no-baseline] [--compare] [--out DIR]

Starts `pushbench serve` on 10.77.0.1 and N `pushbench agent`s, agent i in the
network namespace pb-agent-i at 10.77.0.(10+i), all on the bridge pbbr0, runs
one cell with the clients split evenly over the agents, then (unless
--no-baseline) the same cell from one load generator in this namespace, and
prints both summary lines and the table of the two runs and the agents.
Results: DIR/agents and DIR/single (default: results/runs/<UTC stamp>-agents);
`pushbench plot DIR/agents` draws the report of the merged cell. --compare
also runs `pushbench compare --server-host 10.77.0.1 --agents ...` over SSE
and WebSocket at the same point into DIR/compare: each cell's server child
listens on the bridge, where the agents reach it.
USAGE
}
while [ $# -gt 0 ]; do
  case "$1" in
    --agents) agents=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --transport) transport=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --payload) payload=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --connect-rate) connect_rate=$2; shift 2 ;;
    --skew) skew=$2; shift 2 ;;
    --no-baseline) baseline=0; shift ;;
    --compare) compare=1; shift ;;
    --out) case "$2" in /*) out=$2 ;; *) out=$caller/$2 ;; esac; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "agents-local.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
case "$agents" in ''|*[!0-9]*) echo "agents-local.sh: --agents $agents: want a number from 1 to 200" >&2; exit 2 ;; esac
if [ "$agents" -lt 1 ] || [ "$agents" -gt 200 ]; then
  echo "agents-local.sh: --agents $agents: want a number from 1 to 200" >&2; exit 2
fi
[ "$(id -u)" = 0 ] || { echo "agents-local.sh: needs root for network namespaces (sudo)" >&2; exit 2; }
command -v go >/dev/null 2>&1 || { echo "agents-local.sh: go not found in PATH" >&2; exit 2; }
command -v ip >/dev/null 2>&1 || { echo "agents-local.sh: ip not found (apt-get install -y iproute2)" >&2; exit 2; }
ip link show pbbr0 >/dev/null 2>&1 && { echo "agents-local.sh: bridge pbbr0 exists: another run is in progress (or remove it: ip link del pbbr0)" >&2; exit 2; }

[ -n "$out" ] || out=results/runs/$(date -u +%Y%m%dT%H%M%SZ)-agents
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for i in $(seq 1 "$agents"); do ip netns del "pb-agent-$i" 2>/dev/null || true; done
  ip link del pbbr0 2>/dev/null || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "agents-local.sh: building pushbench" >&2
go build -o "$work/pushbench" ./cmd/pushbench
bin=$work/pushbench
token=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
atoken=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

# The bridge in this namespace carries the server's address; each agent's
# namespace is joined to it by a veth pair.
ip link add pbbr0 type bridge
ip addr add 10.77.0.1/24 dev pbbr0
ip link set pbbr0 up
for i in $(seq 1 "$agents"); do
  ns=pb-agent-$i
  ip netns add "$ns"
  ip link add "pbv$i" type veth peer name eth0 netns "$ns"
  ip link set "pbv$i" master pbbr0 up
  ip -n "$ns" addr add "10.77.0.$((10 + i))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done

# waitfor FILE: until the process writing FILE says it listens (≤ 10 s).
waitfor() {
  for _ in $(seq 1 100); do
    grep -q 'listening on' "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "agents-local.sh: $(basename "$1" .log) did not start:" >&2; cat "$1" >&2; exit 1
}

# The server and the agents run in process groups of their own: Ctrl-C
# reaches only the coordinator, which then writes what it measured
# (partial) while they still answer; the cleanup stops them after. Not in
# sessions of their own (setsid): with the kernel's autogroup scheduling
# each session is scheduled as one group, which measured here raised the
# merged p50 by 40% and the CPU per event by 60% against processes of one
# session, as `pushbench run` keeps its server child.
pgroup() { exec perl -e 'setpgrp(0, 0); exec @ARGV or die "exec $ARGV[0]: $!\n"' -- "$@"; }
command -v perl >/dev/null 2>&1 || { echo "agents-local.sh: perl not found (it starts the server and agents in process groups of their own)" >&2; exit 2; }
pgroup "$bin" serve --addr 10.77.0.1:8080 --token "$token" >"$work/server.log" 2>&1 &
pids+=($!)
waitfor "$work/server.log"
list=""
for i in $(seq 1 "$agents"); do
  extra=()
  if [ -n "$skew" ] && [ "$i" = "$agents" ]; then extra=(--clock-skew "$skew"); fi
  pgroup ip netns exec "pb-agent-$i" "$bin" agent --listen "10.77.0.$((10 + i)):7700" --token "$atoken" "${extra[@]}" >"$work/agent$i.log" 2>&1 &
  pids+=($!)
  list=$list${list:+,}10.77.0.$((10 + i)):7700
done
for i in $(seq 1 "$agents"); do waitfor "$work/agent$i.log"; done

cell=(--transport "$transport" --clients "$clients" --rate "$rate" --payload "$payload" --duration "$duration" --warmup "$warmup" --connect-rate "$connect_rate" --quiet)
echo "agents-local.sh: $clients $transport clients over $agents agents ($list)" >&2
rc=0
"$bin" run --server http://10.77.0.1:8080 --token "$token" --agents "$list" --agent-token "$atoken" "${cell[@]}" --out "$out/agents" || rc=$?
# Ctrl-C ends the coordinator, which writes a partial record; bash does
# not act on a SIGINT its foreground child handled, so stop here.
if grep -q '"partial": true' "$out/agents/result.json" 2>/dev/null; then
  echo "agents-local.sh: interrupted; the partial record is in $out/agents" >&2
  exit 130
fi
if [ "$baseline" = 1 ]; then
  echo "agents-local.sh: the same cell from one load generator" >&2
  "$bin" run --server http://10.77.0.1:8080 --token "$token" "${cell[@]}" --out "$out/single" || rc=$?
fi
if [ "$compare" = 1 ]; then
  echo "agents-local.sh: pushbench compare over the agents, each cell's server child on 10.77.0.1" >&2
  "$bin" compare --server-host 10.77.0.1 --agents "$list" --agent-token "$atoken" --transports sse,ws \
    --clients "$clients" --rates "$rate" --payloads "$payload" --duration "$duration" --warmup "$warmup" \
    --connect-rate "$connect_rate" --out "$out/compare" >&2 || rc=$?
fi
# The table the README's agents block is generated from (pushbench plot
# --readme README.md DIR).
printf '%s\n' "$command" >"$out/command.txt"
if [ -f "$out/agents/result.json" ]; then
  "$bin" plot --readme - "$out" || rc=$?
fi
echo "agents-local.sh: results in $out" >&2
exit "$rc"
