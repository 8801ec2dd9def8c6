#!/usr/bin/env python3
"""Extracts every sequential alarm raised in suite runs and the systemic votes behind it, from the debug log of
`RUST_LOG=warn,ionm::suite=info,ionm_monitor::detector=debug ionm bench --suite --suite-threads 1 ...`
(one thread, so a run's lines come before its "done" line). Usage: extract.py OUT.json.gz LOG [LOG...]"""
import gzip
import json
import re
import sys

vote_re = re.compile(r'sequential systemic vote trace="([^"]+)" role=(\w+) slow=(\S+) se=(\S+) block=(\S+) '
                     r'active=(\w+) alarm=(\w+)')
raise_re = re.compile(r'sequential raise stream_s=([\d.]+) trace="([^"]+)" systemic=(\w+)')
done_re = re.compile(r'suite: (\S+) seed (\d+) done')


def parse(path):
    out, pending, votes = [], [], []
    for line in open(path, errors="replace"):
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        m = vote_re.search(line)
        if m:
            if any(v["trace"] == m.group(1) for v in votes):
                votes = []  # a new systemic() call
            votes.append(dict(trace=m.group(1), role=m.group(2), slow=float(m.group(3)), se=float(m.group(4)),
                              block=float(m.group(5)), active=m.group(6) == "true", alarm=m.group(7) == "true"))
            continue
        m = raise_re.search(line)
        if m:
            pending.append(dict(t=float(m.group(1)), trace=m.group(2), systemic=m.group(3) == "true", votes=votes))
            votes = []
            continue
        m = done_re.search(line)
        if m:
            for p in pending:
                p["case"], p["seed"] = m.group(1), int(m.group(2))
            out += pending
            pending = []
    return out


raises = [r for path in sys.argv[2:] for r in parse(path)]
with gzip.open(sys.argv[1], "wt") as f:
    json.dump(raises, f)
print(f"{len(raises)} raises")
