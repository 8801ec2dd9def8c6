#!/bin/sh
# Runs every `ionm bench` configuration of the report; outputs into benches/results/<date>-<machine>/.
set -e
B=${IONM:-target/release/ionm}
D=${1:-benches/results/2026-11-26-vm}
for cfg in "16 10000" "16 20000" "32 20000"; do
  set -- $cfg
  for s in 600 3600; do
    lat=0; [ $s = 600 ] && lat=60
    RUST_LOG=warn $B bench --channels $1 --rate $2 --seconds $s --latency-seconds $lat --json --no-progress > $D/bench-$1ch-$2hz-${s}s.json
    RUST_LOG=warn $B bench --channels $1 --rate $2 --seconds $s --latency-seconds 0 --no-progress > $D/bench-$1ch-$2hz-${s}s.txt 2>&1 || true
  done
done
