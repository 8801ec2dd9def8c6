#!/usr/bin/env python3
"""Baseline against the mean of the later averages of unchanged traces, per trace group, from the events of the
suite's 8-hour stable runs: `python3 baseline_bias.py BEFORE_DIRS AFTER_DIRS` (comma-separated folders written by
`ionm bench --suite --suite-cases stable --suite-seed-offset N --suite-out DIR`; run.sh makes them). 1.000 is
the expectation for an unbiased baseline (nothing changes in these runs)."""
import json, sys, glob, collections, statistics as st
def load(path):
    av = collections.defaultdict(list); base = {}
    for line in open(path):
        if '"type":"average"' in line:
            e = json.loads(line); av[e["trace"]].append((e["stream_s"], e["amplitude_uv"]))
        elif '"type":"baseline"' in line:
            e = json.loads(line); base.setdefault(e["trace"], (e["stream_s"], e["amplitude_uv"]))
    return av, base
def group(t):
    if t.startswith(("CP3","CP4","Cz")): return "cortical"
    if t.startswith("Cv5"): return "cervical"
    return "peripheral"
for label, dirs in (("before", sys.argv[1].split(",")), ("after", sys.argv[2].split(","))):
    g = collections.defaultdict(list)
    for d in dirs:
        for f in sorted(glob.glob(d + "/*.events.jsonl")):
            av, base = load(f)
            for t, xs in av.items():
                if t not in base: continue
                bs, bamp = base[t]
                after = [a for s, a in xs if s > bs + 1e-6 and a is not None]
                if len(after) < 10: continue
                g[group(t)].append(bamp / st.mean(after))
    for k in ("cortical", "cervical", "peripheral"):
        v = g[k]; m = st.mean(v); se = st.stdev(v) / len(v) ** 0.5
        print(f"{label:6s} {k:10s} baseline / mean of later averages: {m:.3f} ± {se:.3f} (n={len(v)} trace-runs, min {min(v):.2f}, max {max(v):.2f})")
