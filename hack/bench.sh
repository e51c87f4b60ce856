#!/usr/bin/env bash
# make bench: every benchmark, one after another, with the arguments RESULTS.md quotes.
# Each prints its figures next to its bar; copy them into tests/bench/RESULTS.md with the
# date and the machine's load. BENCH_ONLY="risk hotpath" runs a subset.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
declare -A BENCH=(
  [risk]="tests/bench/bench_risk.py"
  [hotpath]="tests/bench/bench_runtime_hotpath.py --orders 2000"
  [simulator]="tests/bench/bench_simulator.py --duration 10"
  [operator]="tests/bench/bench_operator_scale.py --bots 100 300 1000 --idle 60"
  [failover]="tests/bench/bench_failover.py --hard 20 --graceful 20"
  [ratelimit]="tests/bench/bench_ratelimit.py --processes 10 --window 60 --units-per-minute 600"
  [marketdata]="tests/bench/bench_marketdata.py --duration 15"
)
ORDER=(risk hotpath simulator operator failover ratelimit marketdata)
selected=(${BENCH_ONLY:-${ORDER[@]}})
echo "== make bench on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg): ${selected[*]} =="
for name in "${selected[@]}"; do
  [[ -n "${BENCH[$name]:-}" ]] || { echo "unknown benchmark '$name' (known: ${ORDER[*]})" >&2; exit 2; }
  echo "== bench $name: $PY ${BENCH[$name]} =="
  start=$SECONDS
  # shellcheck disable=SC2086  # the arguments are meant to split
  $PY ${BENCH[$name]}
  echo "== bench $name done in $((SECONDS - start))s =="
done
