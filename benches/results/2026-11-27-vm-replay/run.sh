#!/usr/bin/env bash
# The commands behind this folder (issue 7), from the repository root, on a quiet machine. ~3 min.
set -euo pipefail
out=benches/results/2026-11-27-vm-replay
cargo build --release --bin ionm
bin=target/release/ionm
tmp=$(mktemp -d)
"$bin" demo --speed max --rate 20000 --sim-seconds 120 --record "$tmp/case.bdf" --headless --quiet
# MNE against ionm on the same file (5 runs of each side; warm and cold MNE; agreement block by block).
python3 benches/compare_mne.py --ionm "$bin" --bdf "$tmp/case.bdf" --repeat 5 --out "$tmp" > "$out/compare_mne.txt"
cp "$tmp/compare_mne.json" "$tmp/compare.toml" "$out/"
# Alternated A/B of two binaries (OLD: a build of an earlier commit): wall and user+sys per process.
# python3 $out/ab.py OLD "$bin" 10 --protocol "$tmp/compare.toml"; python3 $out/ab.py OLD "$bin" 8
# One core:
for i in 1 2 3 4 5; do /usr/bin/time -f "%e %U %S" taskset -c 0 "$bin" replay "$tmp/case.bdf" --speed max \
    --events /dev/null --headless --quiet; done
