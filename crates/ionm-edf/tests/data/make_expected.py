#!/usr/bin/env python3
"""Expected values for the ionm-edf reader, produced by pyedflib (EDFlib), the reference.

Run from this directory:  python3 make_expected.py      (needs: pip install pyedflib numpy)

1. Every file under pyedflib/ (copied from pyedflib's `data/` and `tests/data/`, BSD licence in pyedflib/LICENSE)
   is read with pyedflib; per file we record the header, each signal's metadata, a digest of its samples
   (CRC-32 of the digital values as little-endian int32, exact sums, first/last samples and samples at fixed
   positions, in digital and physical units) and the annotation list.
2. broken/: small deliberately broken files are derived here from a hand-made valid EDF+C file (built byte by
   byte below, independently of the Rust code). For each we record pyedflib's error (or that it opened it)
   and what ionm-edf must do: the field its error must name, or how many records it must serve.

Writes expected.json (compact). The Rust test tests/pyedflib_compat.rs compares against it.
"""
import glob
import json
import os
import zlib

import numpy as np
import pyedflib

HERE = os.path.dirname(os.path.abspath(__file__))
N_EDGE = 8  # first/last samples recorded
N_POS = 16  # samples at fixed positions k*(n-1)//(N_POS-1)

# pyedflib's filetype: 0 EDF, 1 EDF+, 2 BDF, 3 BDF+. It does not say continuous or discontinuous; for "+" files
# that is the 5th character of the header's reserved field ("EDF+C"/"EDF+D"), read below from the raw bytes.
FILETYPES = {0: ("EDF", False), 1: ("EDF", True), 2: ("BDF", False), 3: ("BDF", True)}


def digest(r, i):
    dig = r.readSignal(i, digital=True).astype(np.int64)
    phys = r.readSignal(i)
    n = len(dig)
    pos = sorted(set(k * (n - 1) // (N_POS - 1) for k in range(N_POS))) if n else []
    return {
        "n": n,
        "crc32": zlib.crc32(dig.astype("<i4").tobytes()),
        "sum": int(dig.sum()),
        "sumsq": int((dig * dig).sum()),
        "first": [int(v) for v in dig[:N_EDGE]],
        "last": [int(v) for v in dig[-N_EDGE:]],
        "pos": pos,
        "at": [int(dig[p]) for p in pos],
        "phys_first": [float(v) for v in phys[:N_EDGE]],
        "phys_last": [float(v) for v in phys[-N_EDGE:]],
        "phys_at": [float(phys[p]) for p in pos],
        "phys_sum": float(phys.sum()),
    }


def describe(path):
    r = pyedflib.EdfReader(path)
    try:
        fmt, plus = FILETYPES[r.filetype]
        with open(path, "rb") as raw:
            reserved = raw.read(256)[192:236]
        variant = {b"C": "Continuous", b"D": "Discontinuous"}[reserved[4:5]] if plus else "Plain"
        out = {
            "format": fmt,
            "variant": variant,
            "start": [r.startdate_year, r.startdate_month, r.startdate_day,
                      r.starttime_hour, r.starttime_minute, r.starttime_second],
            # EDFlib keeps the sub-second start (first time-keeping TAL) in units of 100 ns.
            "start_subsecond_100ns": int(r.starttime_subsecond),
            "records": int(r.datarecords_in_file),
            "record_duration": float(r.datarecord_duration),
            "file_duration": float(r.file_duration),
            "signals": [],
            "annotations": [],
        }
        if plus:
            out["subfields"] = {k: getattr(r, k) if isinstance(getattr(r, k), str) else getattr(r, k).decode()
                                for k in ("patientcode", "patientname", "patient_additional", "admincode",
                                          "technician", "equipment", "recording_additional")}
            out["subfields"]["sex"] = r.getSex()
            out["subfields"]["birthdate"] = r.getBirthdate()
        else:
            out["patient"] = r.patient.decode().rstrip()
            out["recording"] = r.recording.decode().rstrip()
        for i in range(r.signals_in_file):
            out["signals"].append({
                "label": r.getLabel(i),
                "transducer": r.getTransducer(i),
                "dimension": r.getPhysicalDimension(i),
                "prefilter": r.getPrefilter(i),
                "fs": float(r.getSampleFrequency(i)),
                "samples_per_record": int(r.samples_in_datarecord(i)),
                "pmin": float(r.getPhysicalMinimum(i)),
                "pmax": float(r.getPhysicalMaximum(i)),
                "dmin": int(r.getDigitalMinimum(i)),
                "dmax": int(r.getDigitalMaximum(i)),
                "data": digest(r, i),
            })
        # read_annotation(): onsets as integers in 100 ns after the first sample (EDFlib's own resolution).
        _, durations, texts = r.readAnnotations()
        for (onset_100ns, _dur_s, text_b), dur, text in zip(r.read_annotation(), durations, texts):
            out["annotations"].append([int(onset_100ns), float(dur), str(text)])
        return out
    finally:
        r.close()


# ---------------------------------------------------------------------------------------------------------------
# Broken files, derived from a valid hand-made EDF+C file.

def field(text, width):
    b = text.encode("ascii") if isinstance(text, str) else text
    assert len(b) <= width, (text, width)
    return b + b" " * (width - len(b))


SIGNALS = [  # label, dim, pmin, pmax, dmin, dmax, spr
    ("Fz", "uV", -100, 100, -2048, 2047, 10),
    ("Stim", "mA", 0, 5, 0, 1000, 5),
    ("EDF Annotations", "", -1, 1, -32768, 32767, 30),
]
N_RECORDS = 3
DURATION = "0.1"


def base_header(n_records=N_RECORDS, version=b"0       ", reserved="EDF+C"):
    ns = len(SIGNALS)
    h = version + field("X F 01-JAN-1990 Test_Patient", 80) + field("Startdate 02-MAR-2021 X X ionm", 80)
    h += field("02.03.21", 8) + field("10.11.12", 8) + field(str(256 * (ns + 1)), 8)
    h += field(reserved, 44) + field(str(n_records), 8) + field(DURATION, 8) + field(str(ns), 4)
    cols = [(0, 16), (None, 80), (1, 8), (2, 8), (3, 8), (4, 8), (5, 8), (None, 80), (6, 8), (None, 32)]
    for k, width in cols:
        for s in SIGNALS:
            h += field("" if k is None else str(s[k]), width)
    assert len(h) == 256 * (ns + 1)
    return h


def base_records():
    out = b""
    for r in range(N_RECORDS):
        fz = [(r * 37 + k * 101) % 4096 - 2048 for k in range(10)]
        stim = [(r + k) * 100 % 1001 for k in range(5)]
        out += b"".join(v.to_bytes(2, "little", signed=True) for v in fz + stim)
        tal = f"+{r * 0.1:.1f}\x14\x14\x00".encode()
        if r == 1:
            tal += "+0.15\x150.01\x14stim 1\x14\x00+0.17\x14µ-event\x14\x00".encode("utf-8")
        assert len(tal) <= 60
        out += tal + b"\x00" * (60 - len(tal))
    return out


def patch(b, offset, new):
    return b[:offset] + new + b[offset + len(new):]


def sig_field_offset(col, sig):
    widths = [16, 80, 8, 8, 8, 8, 8, 80, 8, 32]
    return 256 + sum(w * len(SIGNALS) for w in widths[:col]) + widths[col] * sig


def broken_files():
    """(name, bytes, expectation). Expectations are what the EDF specification requires, written by hand."""
    good = base_header() + base_records()
    rec_bytes = sum(s[6] for s in SIGNALS) * 2
    hb = 256 * (len(SIGNALS) + 1)
    files = [
        ("valid.edf", good, {"ok": True, "records": 3}),
        ("bad_version.edf", patch(good, 0, b"1       "), {"error_field": "version", "offset": 0}),
        ("bad_header_bytes.edf", patch(good, 184, field("768", 8)),
         {"error_field": "number of bytes in header record", "offset": 184}),
        ("bad_signal_count.edf", patch(good, 252, b"ab3 "), {"error_field": "number of signals", "offset": 252}),
        ("too_many_signals.edf", patch(good, 252, b"9999"), {"error": "truncated"}),
        ("billion_records.edf", patch(good, 236, field("99999999", 8)),
         {"error_field": "number of data records", "offset": 236}),
        ("absurd_samples.edf", patch(good, sig_field_offset(8, 1), field("99999999", 8)),
         {"error_field": "samples per data record", "signal": 1, "offset": sig_field_offset(8, 1)}),
        ("bad_physical_min.edf", patch(good, sig_field_offset(3, 1), field("0,5", 8)),
         {"error_field": "physical minimum", "signal": 1, "offset": sig_field_offset(3, 1)}),
        ("equal_physical.edf", patch(good, sig_field_offset(4, 0), field("-100", 8)),
         {"error_field": "physical maximum", "signal": 0, "offset": sig_field_offset(4, 0)}),
        ("digital_inverted.edf", patch(good, sig_field_offset(6, 0), field("-4000", 8)),
         {"error_field": "digital maximum", "signal": 0, "offset": sig_field_offset(6, 0)}),
        ("digital_out_of_range.edf", patch(good, sig_field_offset(5, 0), field("-40000", 8)),
         {"error_field": "digital minimum", "signal": 0, "offset": sig_field_offset(5, 0)}),
        ("zero_samples.edf", patch(good, sig_field_offset(8, 0), field("0", 8)),
         {"error_field": "samples per data record", "signal": 0, "offset": sig_field_offset(8, 0)}),
        ("non_ascii_patient.edf", patch(good, 8 + 4, b"\xe9"),
         {"error_field": "local patient identification", "offset": 12}),
        ("non_ascii_label.edf", patch(good, 256 + 16 + 1, b"\x01"),
         {"error_field": "label", "signal": 1, "offset": 256 + 17}),
        ("bad_date.edf", patch(good, 168, b"32.13.21"), {"error_field": "startdate", "offset": 168}),
        ("bad_time.edf", patch(good, 176, b"10:11:12"), {"error_field": "starttime", "offset": 176}),
        ("negative_duration.edf", patch(good, 244, field("-1", 8)),
         {"error_field": "duration of a data record", "offset": 244}),
        ("zero_duration_with_data.edf", patch(good, 244, field("0", 8)),
         {"error_field": "duration of a data record", "offset": 244}),
        ("bad_reserved.edf", patch(good, 192, field("EDF+X", 44)), {"error_field": "reserved", "offset": 192}),
        ("bdf_reserved_in_edf.edf", patch(good, 192, field("BDF+C", 44)), {"error_field": "reserved", "offset": 192}),
        ("plus_without_annotations.edf", patch(good, sig_field_offset(0, 2), field("Other", 16)),
         {"error_field": "label"}),
        ("header_cut.edf", good[:300], {"error": "truncated"}),
        # Robustness: these must open (with a warning), serving the complete records present.
        ("truncated_mid_record.edf", good[:hb + 2 * rec_bytes + rec_bytes // 2], {"ok": True, "records": 2}),
        ("count_minus_one.edf", patch(good, 236, field("-1", 8)), {"ok": True, "records": 3}),
        ("count_stale_low.edf", patch(good, 236, field("1", 8)), {"ok": True, "records": 3}),
        ("count_minus_one_partial.edf", patch(good, 236, field("-1", 8))[:hb + rec_bytes + 7],
         {"ok": True, "records": 1}),
        # Header fine, annotation broken: opens, but reading annotations must fail naming record and byte.
        ("bad_tal.edf", patch(good, hb + rec_bytes + 30, b"0.0"),
         {"ok": True, "records": 3, "annotations_error": {"record": 1, "offset": hb + rec_bytes + 30}}),
    ]
    return files


def main():
    expected = {"pyedflib_version": pyedflib.__version__, "files": {}, "broken": {}}
    for path in sorted(glob.glob(os.path.join(HERE, "pyedflib", "**", "*.[eb]df"), recursive=True)):
        rel = os.path.relpath(path, HERE)
        try:
            expected["files"][rel] = describe(path)
        except Exception as e:  # pyedflib refuses the file: we must give a clear error too
            expected["files"][rel] = {"pyedflib_error": str(e)}

    os.makedirs(os.path.join(HERE, "broken"), exist_ok=True)
    for name, data, expect in broken_files():
        path = os.path.join(HERE, "broken", name)
        with open(path, "wb") as f:
            f.write(data)
        try:
            d = describe(path)
            entry = {"pyedflib": "ok", "pyedflib_records": d["records"]}
            if name == "valid.edf":
                entry["described"] = d
        except Exception as e:
            entry = {"pyedflib": "error", "pyedflib_error": str(e)}
        entry["expect"] = expect
        expected["broken"][name] = entry

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
