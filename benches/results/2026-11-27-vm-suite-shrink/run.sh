#!/usr/bin/env bash
# The commands behind this folder (issue 8), from the repository root. Each suite ≈ 2.6 min on 2 vCPUs.
set -euo pipefail
out=benches/results/2026-11-27-vm-suite-shrink
cargo build --release --bin ionm
tmp=$(mktemp -d)   # per-run events (≈ 250 MB a suite) stay out of the repository
for offset in 0 1000 2000 3000; do
    target/release/ionm bench --suite --suite-seed-offset "$offset" --suite-out "$tmp/G$offset" > /dev/null
    mkdir -p "$out/G$offset" && cp "$tmp/G$offset/suite.txt" "$tmp/G$offset/suite.json" "$out/G$offset/"
done
# before-G3000: the same suite with the build of c4fcf90 (before template shrinkage), seed offset 3000.
python3 "$out/compare.py" > "$out/compare.txt"
