#!/usr/bin/env python3
"""Checks the files written by ionm-edf's writer (tests/data/written/) with pyedflib and MNE-Python.

Regenerate them with  IONM_EDF_REGENERATE=1 cargo test -p ionm-edf --test writer  then run, from this directory:
    python3 check_written.py          (needs: pip install pyedflib mne numpy)

The recipe of each file (tests/writer.rs: written_bdf, written_edf) is restated here independently; every sample,
sample rate, physical value, record start and annotation is compared. Exits non-zero on any mismatch.
"""
import os
import sys

import numpy as np
import pyedflib

HERE = os.path.dirname(os.path.abspath(__file__))
FAIL = []


def check(cond, what):
    if not cond:
        FAIL.append(what)
        print("FAIL:", what)


def phys(dig, pmin, pmax, dmin, dmax):
    return (np.asarray(dig, dtype=float) - dmin) * (pmax - pmin) / (dmax - dmin) + pmin


def raw_tals(path):
    """Time-keeping onsets per record and (onset, duration, text) from the raw bytes: a parser independent of
    both EDFlib and ionm-edf."""
    b = open(path, "rb").read()
    ns = int(b[252:256])
    spr = [int(b[256 + ns * 216 + i * 8:256 + ns * 216 + i * 8 + 8]) for i in range(ns)]
    labels = [b[256 + i * 16:256 + i * 16 + 16].decode().strip() for i in range(ns)]
    bps = 3 if b[0] == 0xFF else 2
    rec = sum(spr) * bps
    hb = 256 * (ns + 1)
    a = labels.index("BDF Annotations" if bps == 3 else "EDF Annotations")
    off = sum(spr[:a]) * bps
    starts, anns = [], []
    for r in range((len(b) - hb) // rec):
        chunk = b[hb + r * rec + off: hb + r * rec + off + spr[a] * bps]
        for k, tal in enumerate(chunk.rstrip(b"\x00").split(b"\x00")):
            head, *texts = tal.split(b"\x14")
            onset, _, dur = head.partition(b"\x15")
            texts = [t.decode("utf-8") for t in texts[:-1]]
            if k == 0:
                starts.append(float(onset))
                texts = texts[1:]
            for t in texts:
                anns.append((float(onset), float(dur) if dur else None, t))
    return starts, anns


def check_bdf():
    path = os.path.join(HERE, "written", "ionm_written.bdf")
    lo, hi, span = -(1 << 23), (1 << 23) - 1, 1 << 24
    n_rec = 10
    k5 = np.arange(500 * n_rec, dtype=np.int64)
    k10 = np.arange(1000 * n_rec, dtype=np.int64)
    k100 = np.arange(10 * n_rec, dtype=np.int64)
    want = {
        "C3'-Fz": (5000.0, "uV", -1000.0, 1000.0, lo, hi, (k5 * 7919 + 12345) % span + lo),
        "EMG TA": (10000.0, "uV", 5000.0, -5000.0, lo, hi, (k10 * 104729) % span + lo),
        "Trigger": (100.0, "", 0.0, 1.0, 0, 1, (k100 % 7 == 0).astype(np.int64)),
    }
    starts_want = [0.25 + 0.1 * r for r in range(n_rec)]
    # Onsets relative to the header's start second; EDFlib reports them after the first sample (0.25 s).
    anns_want = [(0.3, 0.0002, "stim 1"), (0.55, None, "baseline"), (0.95, 0.05, "UTF-8 µV ✓")]
    check_file(path, "BDF", want, 0.1, n_rec, starts_want, anns_want)
    check_mne(path, want, anns_want, 0.25, "EMG TA", 10000.0, 1e-6)


def edf_want():
    r_of = lambda n, spr: np.arange(n * spr, dtype=np.int64)
    return {
        "Fz": (200.0, "uV", -3276.8, 3276.7, -32768, 32767, r_of(4, 100) * 300 % 65536 - 32768),
        "Cz": (100.0, "mV", -2.0, 2.0, -2048, 2047, r_of(4, 50) * 37 % 4096 - 2048),
    }


def check_edf():
    path = os.path.join(HERE, "written", "ionm_written.edf")
    starts_want = [0.0, 0.5, 1.0, 1.5]
    anns_want = [(0.25, None, "start"), (1.2, 1.5, "after gap")]
    check_file(path, "EDF", edf_want(), 0.5, 4, starts_want, anns_want)
    check_mne(path, edf_want(), anns_want, 0.0, "Fz", 200.0, 1e-6)


def check_edf_discontinuous():
    """EDFlib (pyedflib) refuses EDF+D files by design, and MNE reads them as if continuous: check the samples
    with MNE and the record starts (the 1 s gap) and annotations with the raw TAL parser."""
    path = os.path.join(HERE, "written", "ionm_written_d.edf")
    name = os.path.basename(path)
    try:
        pyedflib.EdfReader(path).close()
        check(False, f"{name}: pyedflib was expected to refuse a discontinuous file")
    except OSError as e:
        check("discontinuous" in str(e), f"{name}: pyedflib error {e}")
    starts, anns = raw_tals(path)
    check(np.allclose(starts, [0.0, 0.5, 2.0, 2.5], atol=1e-9), f"{name} record starts {starts}")
    check(anns == [(0.25, None, "start"), (2.1, 1.5, "after gap")], f"{name} raw annotations {anns}")
    import mne
    raw = mne.io.read_raw_edf(path, preload=True, verbose="ERROR")
    for label, (fs, dim, pmin, pmax, dmin, dmax, dig) in edf_want().items():
        if fs != raw.info["sfreq"]:
            continue
        scale = 1e-6 if dim == "uV" else 1e-3
        data = raw.get_data(picks=[label])[0]
        check(np.allclose(data, phys(dig, pmin, pmax, dmin, dmax) * scale, rtol=0, atol=1e-9 * (pmax - pmin) * scale),
              f"MNE {name} {label}")
    print(f"{name}: EDF+D checked with raw TALs (gap visible) and MNE samples")


def check_file(path, fmt, want, duration, n_rec, starts_want, anns_want):
    name = os.path.basename(path)
    r = pyedflib.EdfReader(path)
    check(r.filetype == (pyedflib.FILETYPE_BDFPLUS if fmt == "BDF" else pyedflib.FILETYPE_EDFPLUS), f"{name} type")
    check(r.datarecords_in_file == n_rec, f"{name} records {r.datarecords_in_file}")
    check(abs(r.datarecord_duration - duration) < 1e-12, f"{name} duration")
    d = r.getStartdatetime()
    check((d.year, d.month, d.day, d.hour, d.minute, d.second) == (2024, 5, 6, 7, 8, 9), f"{name} start {d}")
    check(r.starttime_subsecond == round(starts_want[0] % 1 * 1e7), f"{name} subsecond {r.starttime_subsecond}")
    check(r.getPatientCode() == "P-01" and r.getPatientName() == "Test Patient", f"{name} patient")
    check(r.getEquipment() == "ionm", f"{name} equipment")
    labels = r.getSignalLabels()
    check(labels == list(want), f"{name} labels {labels}")
    for i, (label, (fs, dim, pmin, pmax, dmin, dmax, dig_want)) in enumerate(want.items()):
        check(r.getSampleFrequency(i) == fs, f"{name} {label} fs {r.getSampleFrequency(i)}")
        check(r.getPhysicalDimension(i) == dim, f"{name} {label} dim")
        check((r.getPhysicalMinimum(i), r.getPhysicalMaximum(i)) == (pmin, pmax), f"{name} {label} prange")
        check((r.getDigitalMinimum(i), r.getDigitalMaximum(i)) == (dmin, dmax), f"{name} {label} drange")
        dig = r.readSignal(i, digital=True).astype(np.int64)
        check(np.array_equal(dig, dig_want), f"{name} {label} digital samples")
        ph = r.readSignal(i)
        # Same line, different f64 rounding: 1e-9 of the range is far below one digital step.
        check(np.allclose(ph, phys(dig_want, pmin, pmax, dmin, dmax), rtol=0, atol=1e-9 * abs(pmax - pmin)),
              f"{name} {label} physical samples")
    onsets, durations, texts = r.readAnnotations()
    got = list(zip(onsets, durations, texts))
    check(len(got) == len(anns_want), f"{name} annotation count {got}")
    for (o, du, t), (ow, dw, tw) in zip(got, anns_want):
        # EDFlib: onset after the first sample, 100 ns resolution; duration -1 when absent.
        check(abs(o - (ow - starts_want[0])) < 1.5e-7, f"{name} onset {o} vs {ow}")
        check((du == -1) if dw is None else abs(du - dw) < 1.5e-7, f"{name} duration {du} vs {dw}")
        check(t == tw, f"{name} text {t!r} vs {tw!r}")
    r.close()
    starts, anns = raw_tals(path)
    check(np.allclose(starts, starts_want, atol=1e-9), f"{name} record starts {starts}")
    check([(t, d) for _, d, t in anns] == [(t, d) for _, d, t in anns_want], f"{name} raw annotations {anns}")
    print(f"{name}: pyedflib + raw TALs checked ({n_rec} records, {len(want)} signals, {len(got)} annotations)")


def check_mne(path, want, anns_want, first_offset, label, sfreq, scale):
    import mne
    mne.set_log_level("ERROR")
    raw = mne.io.read_raw_bdf(path, preload=True) if path.endswith(".bdf") else mne.io.read_raw_edf(path, preload=True)
    name = os.path.basename(path)
    # MNE resamples every channel to the highest rate; compare a channel at that rate exactly.
    check(raw.info["sfreq"] == sfreq, f"MNE {name} sfreq {raw.info['sfreq']}")
    fs, dim, pmin, pmax, dmin, dmax, dig = want[label]
    data = raw.get_data(picks=[label])[0]  # SI units
    expected = phys(dig, pmin, pmax, dmin, dmax) * scale
    # MNE computes in float64 from the same header: agreement to 1e-9 of the range.
    check(np.allclose(data, expected, rtol=0, atol=1e-9 * abs(pmax - pmin) * scale), f"MNE {name} {label}")
    ann = [(round(a["onset"], 6), a["description"]) for a in raw.annotations]
    exp = [(round(o - first_offset, 6), t) for o, _, t in anns_want]
    check(ann == exp, f"MNE {name} annotations {ann} vs {exp}")
    print(f"{name}: MNE checked ({len(raw.ch_names)} channels, {len(ann)} annotations)")


if __name__ == "__main__":
    check_bdf()
    check_edf()
    check_edf_discontinuous()
    if FAIL:
        print(f"{len(FAIL)} check(s) failed")
        sys.exit(1)
    print("all checks passed")
