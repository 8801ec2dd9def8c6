#!/usr/bin/env python3
"""Systemic-tag rules of the sequential detector replayed on the votes behind every sequential alarm of the suite
(extract.py): for each rule, focal alarms (drop and latency scenarios, after the onset) tagged systemic — the
dangerous mistake — and anaesthetic-drift alarms (after the onset) tagged systemic. `recorded` is the rule the
build that logged them ran (before this change); "new" the one now in crates/ionm-monitor/src/detector.rs
(SequentialBank::systemic). Usage: evaluate.py RAISES.json.gz"""
import gzip
import json
import math
import sys

R = json.load(gzip.open(sys.argv[1], "rt"))


def peripheral_ok(votes):
    p = sorted(0.0 if v["active"] else v["slow"] for v in votes if v["role"] == "Peripheral")
    return bool(p) and p[len(p) // 2] >= 0.8


def rule(votes, depressed=0.85, block=0.8, resolved_se=None, noisy_se=2.0):
    """Changed: alarm / evidence past h / block mean ratio <= `block` / slow <= `depressed`. Unchanged otherwise.
    With `resolved_se`, a trace whose slow amplitude has a larger standard error needs `noisy_se` of them either
    way: changed at slow <= min(depressed, 1 - noisy_se * se), unchanged at slow >= depressed + noisy_se * se,
    otherwise no vote (its alarm and block averages still count). Systemic: >= 2 votes, >= 75% changed, median
    peripheral slow amplitude >= 0.8."""
    c = []
    for v in votes:
        if v["role"] != "Cortical":
            continue
        hard = v["active"] or v["alarm"] or (not math.isnan(v["block"]) and v["block"] <= block)
        resolved = resolved_se is None or v["se"] <= resolved_se
        if hard or (v["slow"] <= depressed and (resolved or v["slow"] <= 1 - noisy_se * v["se"])):
            c.append(1)
        elif resolved or v["slow"] >= depressed + noisy_se * v["se"]:
            c.append(0)
    return len(c) >= 2 and sum(c) / len(c) >= 0.75 and peripheral_ok(votes)


def score(**kw):
    focal = [r for r in R if r["t"] >= 300 and not r["case"].startswith("anaesthetic")]
    drift = [r for r in R if r["t"] >= 300 and r["case"].startswith("anaesthetic")]
    return (sum(rule(r["votes"], **kw) for r in focal), len(focal),
            sum(rule(r["votes"], **kw) for r in drift), len(drift))


mismatch = sum(rule(r["votes"]) != r["systemic"] for r in R)
print(f"{len(R)} alarms; the recorded rule replayed differs from the logged tag on {mismatch}\n")
print("| rule | focal alarms tagged systemic | drift alarms tagged systemic |")
print("|---|---|---|")
rows = [("recorded (every cortical trace votes by 85%; block 80%)", {}),
        ("**noisy traces (se > 0.1) need 2 se either way (new)**", dict(resolved_se=0.1)),
        ("noisy traces need 1.5 se either way", dict(resolved_se=0.1, noisy_se=1.5)),
        ("noisy at se > 0.08, 2 se", dict(resolved_se=0.08)),
        ("recorded with 88%", dict(depressed=0.88)),
        ("recorded with 90%", dict(depressed=0.9)),
        ("recorded with block 85%", dict(block=0.85)),
        ("recorded with 90% and block 85%", dict(depressed=0.9, block=0.85))]
for name, kw in rows:
    f, nf, d, nd = score(**kw)
    print(f"| {name} | {f} of {nf} | {d} of {nd} |")
