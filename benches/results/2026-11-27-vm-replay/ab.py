#!/usr/bin/env python3
"""Alternated A/B of two ionm binaries: wall (perf_counter) and user+sys (wait4 rusage, µs)."""
import os, statistics, subprocess, sys, time
old, new, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
extra = sys.argv[4:]
res = {old: [], new: []}
for i in range(runs):
    for b in ((old, new) if i % 2 == 0 else (new, old)):
        cmd = [b, "replay", "/tmp/case.bdf", "--speed", "max", "--events", "/dev/null", "--headless", "--quiet", *extra]
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        w = time.perf_counter() - t
        assert status == 0, status
        res[b].append((w, ru.ru_utime + ru.ru_stime))
for b, v in res.items():
    ws = [x[0] for x in v]; cs = [x[1] for x in v]
    print(f"{b}: wall median {statistics.median(ws)*1000:.1f} ms [{min(ws)*1000:.1f}..{max(ws)*1000:.1f}], "
          f"user+sys median {statistics.median(cs)*1000:.1f} ms [{min(cs)*1000:.1f}..{max(cs)*1000:.1f}]")
