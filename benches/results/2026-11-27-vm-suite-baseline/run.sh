#!/usr/bin/env bash
# The commands behind this folder (issue 8 suite; baseline measured like later averages), from the repository
# root. Each suite ≈ 2.6 min on 2 vCPUs (more while something else runs).
set -euo pipefail
out=benches/results/2026-11-27-vm-suite-baseline
cargo build --release --bin ionm
tmp=$(mktemp -d)   # per-run events (≈ 250 MB a suite) stay out of the repository
for offset in 0 1000 2000 3000; do
    target/release/ionm bench --suite --suite-seed-offset "$offset" --suite-out "$tmp/G$offset" > /dev/null
    mkdir -p "$out/G$offset" && cp "$tmp/G$offset/suite.txt" "$tmp/G$offset/suite.json" "$out/G$offset/"
done
python3 "$out/compare.py" > "$out/compare.txt"
# The baseline bias (baseline_bias.txt): the stable case's events of this build (after) and of b585430 (before,
# built in a worktree as $before/target/release/ionm).
after=""; for offset in 0 1000 2000 3000; do after="$after,$tmp/G$offset"; done
# before="";  for offset in 0 1000 2000 3000; do
#     "$before/target/release/ionm" bench --suite --suite-cases stable --suite-seed-offset "$offset" --suite-out "$tmp/B$offset" > /dev/null
#     before="$before,$tmp/B$offset"; done
# python3 "$out/baseline_bias.py" "${before#,}" "${after#,}" > "$out/baseline_bias.txt"
