#!/bin/sh
# Every figure of README.md in this folder, from the repository root:
#   IONM=target/release/ionm sh benches/results/2026-11-27-vm-pairs/run.sh
# (build first: cargo build --release -p ionm; cargo bench -p ionm --bench pipeline --no-run;
#  cargo build --release -p ionm-dsp --example profile). Needs python3 with mne for compare_mne.py.
set -e
B=${IONM:-target/release/ionm}
D=${1:-benches/results/2026-11-27-vm-pairs}
{ lscpu; nproc; free -h; uname -r; uptime; } > $D/hardware.txt
# DSP engine per second of signal (criterion).
cargo bench -p ionm --bench pipeline 2>&1 | tee $D/criterion-pipeline.txt
for i in 1 2 3; do target/release/examples/profile 300; done > $D/profile.txt 2>&1
# Replay of a 120 s 16 ch x 20 kHz BDF through the whole pipeline (file in the page cache).
$B demo --speed max --rate 20000 --sim-seconds 120 --record /tmp/ionm-case.bdf --headless --quiet > /dev/null
for i in 1 2 3 4 5; do /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB max RSS" \
  $B replay /tmp/ionm-case.bdf --speed max --headless --quiet > /dev/null; done 2> $D/replay-time.txt
python3 benches/compare_mne.py --ionm $B --bdf /tmp/ionm-case.bdf --seconds 120 --sweeps 50 --repeat 3 \
  --out $D/compare_mne > $D/compare_mne.txt
# Live latency (simulator paced in real time).
RUST_LOG=warn $B bench --channels 16 --rate 20000 --seconds 10 --latency-seconds 150 --json --no-progress > $D/bench-16ch-20000hz.json
RUST_LOG=warn $B bench --channels 32 --rate 20000 --seconds 10 --latency-seconds 60 --json --no-progress > $D/bench-32ch-20000hz.json
