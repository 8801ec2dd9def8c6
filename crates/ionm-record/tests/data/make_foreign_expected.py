#!/usr/bin/env python3
"""Writes foreign_expected.json: what ReplaySource must produce for every pyedflib test file, computed with
pyedflib (EDFlib) and the replay rules written out independently here:

- signals: the ordinary ones (not annotations), whose unit is a voltage (nV, uV, mV, V, any case), at a
  whole-number rate; of those, the rate most signals share (ties: the higher rate);
- raw values: round half away from zero of physical × nV per unit (gain 1 nV/LSB: these ranges fit 2^30 nV);
- stimuli from annotations starting with "XLSpike" (the rule the Rust test configures): sample index =
  round(onset × rate), onsets as pyedflib reports them (seconds after the first sample).

Per channel: the first 64 raw values, the count, and the CRC-32 (zlib) of all raw values as int32 little-endian.
    python3 make_foreign_expected.py   (pip install pyedflib numpy)
"""

import glob
import json
import math
import os
import zlib

import numpy as np
import pyedflib

HERE = os.path.dirname(os.path.abspath(__file__))
PYEDFLIB = os.path.normpath(os.path.join(HERE, "../../../ionm-edf/tests/data/pyedflib"))
NV = {"nv": 1.0, "uv": 1e3, "mv": 1e6, "v": 1e9}


def round_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def main():
    out = {}
    for path in sorted(glob.glob(os.path.join(PYEDFLIB, "**", "*.?df"), recursive=True)):
        rel = os.path.relpath(path, PYEDFLIB)
        r = pyedflib.EdfReader(path)
        duration = r.datarecord_duration
        usable = []
        for i in range(r.signals_in_file):
            unit = r.getPhysicalDimension(i).strip().lower()
            if unit not in NV:
                continue
            spr = r.getSampleFrequency(i) * duration
            rate = spr / duration
            if abs(rate - round(rate)) > 1e-6 or round(rate) < 1:
                continue
            usable.append((i, int(round(rate))))
        counts = {}
        for _, rate in usable:
            counts[rate] = counts.get(rate, 0) + 1
        best = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
        chans = []
        for i, rate in usable:
            if rate != best:
                continue
            unit = r.getPhysicalDimension(i).strip().lower()
            raw = round_away(r.readSignal(i) * NV[unit]).astype(np.int64)
            chans.append({
                "label": r.getLabel(i).strip(),
                "n": int(len(raw)),
                "head": [int(v) for v in raw[:64]],
                "crc32": zlib.crc32(raw.astype("<i4").tobytes()),
                "adc": [int(math.floor(min(r.getPhysicalMinimum(i), r.getPhysicalMaximum(i)) * NV[unit])),
                        int(math.ceil(max(r.getPhysicalMinimum(i), r.getPhysicalMaximum(i)) * NV[unit]))],
            })
        onsets, _, texts = r.readAnnotations()
        stims = [int(round_away(o * best)) for o, t in zip(onsets, texts) if t.startswith("XLSpike")]
        out[rel] = {"rate": best, "channels": chans, "xlspike_indices": stims}
        r.close()
    with open(os.path.join(HERE, "foreign_expected.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"{len(out)} files")


if __name__ == "__main__":
    main()
