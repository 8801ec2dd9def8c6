#!/usr/bin/env python3
"""Both detectors on the suite before (../2026-11-27-vm-suite-baseline/, build b203ddd) and after the sequential
detector gained its latency CUSUM and its noise-aware systemic vote (this folder): median delays (misses = inf),
false alarms per hour, the systemic tags of alarms after the onset, and the acceptance checks, per seed set; the
checks of the two new held-out sets; the latency scenarios with and without the latency CUSUM."""
import json
import math
import os

here = os.path.dirname(os.path.abspath(__file__))
before = os.path.join(here, "..", "2026-11-27-vm-suite-baseline")
sets = [("tuned", "G0"), ("A", "G1000"), ("B", "G2000"), ("C", "G3000")]


def load(path):
    d = json.load(open(os.path.join(path, "suite.json")))
    rows = {}
    for r in d["rows"]:
        m = r.get("median_delay_all_s")
        rows[(r["case"], r["detector"])] = dict(
            median=math.inf if m is None and r["summary"]["changes"] else m,
            fa=r["summary"]["false_per_h"],
            systemic=(r["systemic_after_onset"], r["alarms_after_onset"]),
        )
    failed = [c["what"] for c in d["checks"] if not c["pass"]]
    return rows, sum(c["pass"] for c in d["checks"]), len(d["checks"]), failed


def fmt(x):
    return "-" if x is None else ("∞" if x == math.inf else f"{x:.0f}")


data = [(name, load(os.path.join(before, g)), load(os.path.join(here, g))) for name, g in sets]
cases = [k[0] for k in data[0][1][0] if k[1] == "block"]
for det in ("block", "sequential"):
    print(f"\n### {det} detector: median delay s (misses = ∞), before → after\n")
    print("| scenario | " + " | ".join(n for n, *_ in data) + " |")
    print("|---|" + "---|" * len(data))
    for c in cases:
        cells = []
        for _, (a, *_), (b, *_) in data:
            x, y = a[(c, det)], b[(c, det)]
            if c.startswith(("stable", "noisy")):
                cells.append(f"FA/h {x['fa']:.3f} → {y['fa']:.3f}")
            elif c.startswith("anaesthetic"):
                cells.append(f"systemic {x['systemic'][0]}/{x['systemic'][1]} → {y['systemic'][0]}/{y['systemic'][1]}")
            else:
                s = "" if y["systemic"][0] == 0 and x["systemic"][0] == 0 else \
                    f" (systemic {x['systemic'][0]}/{x['systemic'][1]} → {y['systemic'][0]}/{y['systemic'][1]})"
                cells.append(f"{fmt(x['median'])} → {fmt(y['median'])}{s}")
        print(f"| {c} | " + " | ".join(cells) + " |")
print("\n| checks passed | " + " | ".join(f"{a[1]}/{a[2]} → **{b[1]}/{b[2]}**" for _, a, b in data) + " |")
for n, a, b in data:
    gone = sorted(set(a[3]) - set(b[3]))
    new = sorted(set(b[3]) - set(a[3]))
    print(f"\nset {n}: now passing: {gone or 'none'}\nset {n}: now failing: {new or 'none'}")

# The two new held-out sets (no earlier run to compare with): checks only.
for name, g in [("D", "G4000"), ("E", "G5000")]:
    path = os.path.join(here, g)
    if not os.path.exists(os.path.join(path, "suite.json")):
        continue
    rows, passed, total, failed = load(path)
    print(f"\nset {name} ({g}): {passed}/{total} checks passed; failing: {failed or 'none'}")

# The latency scenarios with and without the latency CUSUM, same build (N<offset>: --suite-no-latency-cusum).
print("\n### sequential detector on the latency scenarios: median delay s (misses = ∞), amplitude CUSUM alone → "
      "with the latency CUSUM\n")
print("| scenario | " + " | ".join(n for n, _ in sets) + " |")
print("|---|" + "---|" * len(sets))
pairs = []
for n, g in sets:
    off = os.path.join(here, "N" + g[1:])
    pairs.append((load(off)[0], load(os.path.join(here, g))[0]) if os.path.exists(os.path.join(off, "suite.json")) else None)
for c in ("latency-8", "latency-10", "latency-12", "latency-15"):
    cells = []
    for p in pairs:
        cells.append("-" if p is None else f"{fmt(p[0][(c, 'sequential')]['median'])} → {fmt(p[1][(c, 'sequential')]['median'])}")
    print(f"| {c} | " + " | ".join(cells) + " |")
