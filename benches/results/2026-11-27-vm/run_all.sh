#!/bin/sh
# Every figure of README.md, from the repository root: IONM=target/release/ionm sh benches/results/2026-11-27-vm/run_all.sh
# (build first: cargo build --release -p ionm; cargo bench -p ionm --bench pipeline --no-run;
#  cargo build --release -p ionm-dsp --example profile). Needs python3 with mne for compare_mne.py.
set -e
B=${IONM:-target/release/ionm}
D=${1:-benches/results/2026-11-27-vm}
{ lscpu; nproc; free -h; uname -r; uptime; } > $D/hardware.txt
# DSP engine per second of signal (criterion) and the per-stage engine profile.
cargo bench -p ionm --bench pipeline 2>&1 | tee $D/criterion-pipeline.txt
cargo build --release -p ionm-dsp --example profile
for i in 1 2; do target/release/examples/profile 100; done > $D/profile.txt 2>&1
# End to end on the simulator, latency phase in real time (the throughput phase is simulator-bound, 10 s is
# enough). bench-16ch-20000hz-loaded.json is an earlier 240 s run on a loaded machine, before the pre-flush change.
RUST_LOG=warn $B bench --channels 16 --rate 20000 --seconds 10 --latency-seconds 150 --json --no-progress > $D/bench-16ch-20000hz.json
RUST_LOG=warn $B bench --channels 32 --rate 20000 --seconds 10 --latency-seconds 60 --json --no-progress > $D/bench-32ch-20000hz.json
# Replay of a 120 s 16 ch x 20 kHz BDF through the whole pipeline (file in the page cache), and its profile.
$B demo --speed max --rate 20000 --sim-seconds 120 --record /tmp/ionm-case.bdf --headless --quiet > /dev/null
for i in 1 2 3; do /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB max RSS" \
  $B replay /tmp/ionm-case.bdf --speed max --headless --quiet > /dev/null; done 2> $D/replay-time.txt
perf record -F 2000 -g -o /tmp/ionm-replay.perf $B replay /tmp/ionm-case.bdf --speed max --headless --quiet > /dev/null 2>&1
perf report -i /tmp/ionm-replay.perf --no-children --sort comm,symbol --percent-limit 0.5 --stdio 2>/dev/null \
  | grep -v '^$' | grep '%' | grep -v -- '--' > $D/replay-profile.txt
python3 benches/compare_mne.py --ionm $B --seconds 120 --sweeps 50 --out $D/compare_mne > $D/compare_mne.txt
