#!/usr/bin/env python3
"""Sequential detector's median delays (misses = inf) before and after template shrinkage, per seed set, beside
the block detector's; from the suite.json files of this folder and ../2026-11-27-vm-suite-floor/."""
import json
import math
import os

here = os.path.dirname(os.path.abspath(__file__))
floor = os.path.join(here, "..", "2026-11-27-vm-suite-floor")
sets = [("tuned", "G0", os.path.join(floor, "G0")), ("A", "G1000", os.path.join(floor, "G1000")),
        ("B", "G2000", os.path.join(floor, "G2000")), ("C (new)", "G3000", os.path.join(here, "before-G3000"))]


def rows(path):
    d = json.load(open(os.path.join(path, "suite.json")))
    out = {}
    for r in d["rows"]:
        m = r.get("median_delay_all_s")
        out[(r["case"], r["detector"])] = (math.inf if m is None and r["summary"]["changes"] else m,
                                           r["summary"]["false_per_h"])
    return out, sum(c["pass"] for c in d["checks"]), len(d["checks"])


def fmt(x):
    return "-" if x is None else ("∞" if x == math.inf else f"{x:.0f}")


cases = ["drop-40-step", "drop-50-step", "drop-60-step", "drop-70-step", "drop-40-ramp", "drop-50-ramp",
         "drop-60-ramp", "drop-70-ramp", "latency-8", "latency-10", "latency-12", "latency-15"]
print("| scenario | " + " | ".join(f"{n}: block / seq before → after" for n, _, _ in sets) + " |")
print("|---|" + "---|" * len(sets))
data = []
for name, new, old in sets:
    a, pa, na = rows(old)
    b, pb, nb = rows(os.path.join(here, new))
    data.append((a, b, pa, na, pb, nb))
for c in cases:
    cells = []
    for a, b, *_ in data:
        cells.append(f"{fmt(b[(c, 'block')][0])} / {fmt(a[(c, 'sequential')][0])} → **{fmt(b[(c, 'sequential')][0])}**")
    print(f"| {c} | " + " | ".join(cells) + " |")
for c in ["stable-8h", "noisy-cautery"]:
    cells = [f"FA/h {a[(c, 'sequential')][1]:.3f} → {b[(c, 'sequential')][1]:.3f}" for a, b, *_ in data]
    print(f"| {c} (sequential) | " + " | ".join(cells) + " |")
print("| checks passed | " + " | ".join(f"{pa}/{na} → **{pb}/{nb}**" for *_, pa, na, pb, nb in data) + " |")
