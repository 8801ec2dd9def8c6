#!/bin/sh
# Re-makes this folder's suite runs (release build). Run from the repository root; two at a time on 2 cores.
set -e
B=target/release/ionm
R=benches/results/2026-11-27-vm-suite-floor
T=${TMPDIR:-/tmp}/ionm-suite-floor
run() { name=$1; shift; $B bench --suite "$@" --suite-out "$T/$name" >"$T/$name.log" 2>&1; mkdir -p "$R/$name"; cp "$T/$name/suite.txt" "$T/$name/suite.json" "$R/$name/"; }
mkdir -p "$T"
run G0 & run G1000 --suite-seed-offset 1000; wait
run G2000 --suite-seed-offset 2000 & run F0 --suite-false-alarm-hours 8; wait
run F1000 --suite-seed-offset 1000 --suite-false-alarm-hours 8 & run F2000 --suite-seed-offset 2000 --suite-false-alarm-hours 8; wait
