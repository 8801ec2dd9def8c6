#!/usr/bin/env bash
# The commands behind this folder (issue 8 suite; the sequential detector with its latency CUSUM), from the
# repository root. Each suite ≈ 2.6 min on 2 vCPUs (more while something else runs).
set -euo pipefail
out=benches/results/2026-11-27-vm-suite-latency
cargo build --release --bin ionm
tmp=$(mktemp -d)   # per-run events (≈ 250 MB a suite) stay out of the repository
# Tuned seeds (0), held-out sets A, B, C (1000, 2000, 3000) and two new held-out sets D, E (4000, 5000).
for offset in 0 1000 2000 3000 4000 5000; do
    target/release/ionm bench --suite --suite-seed-offset "$offset" --suite-out "$tmp/G$offset" > /dev/null
    mkdir -p "$out/G$offset" && cp "$tmp/G$offset/suite.txt" "$tmp/G$offset/suite.json" "$out/G$offset/"
done
# The latency scenarios again without the latency CUSUM (the amplitude CUSUM alone), same build.
for offset in 0 1000 2000 3000; do
    target/release/ionm bench --suite --suite-seed-offset "$offset" --suite-cases latency --suite-no-latency-cusum \
        --suite-out "$tmp/N$offset" > /dev/null
    mkdir -p "$out/N$offset" && cp "$tmp/N$offset/suite.txt" "$tmp/N$offset/suite.json" "$out/N$offset/"
done
python3 "$out/compare.py" > "$out/compare.txt"
