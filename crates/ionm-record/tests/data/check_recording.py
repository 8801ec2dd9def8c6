#!/usr/bin/env python3
"""Checks an ionm recording with independent readers (pyedflib/EDFlib and MNE-Python).

    pip install pyedflib mne numpy
    python3 check_recording.py                      # the committed fixture recording.bdf
    python3 check_recording.py --partial FILE.bdf   # a file left by a killed recorder: opens, whole records

The fixture and its expectations come from `cargo run -p ionm-record --example make_fixture`, which writes
recording_expected.json and recording_samples.npy from the simulator's stream itself, not from the recording.
Checked: header fields, labels, rates, every digital sample (raw ADC values, 0 in the padded gaps), physical
values against raw × gain within the rounding of the 8-character physical fields, the trigger channel (pyedflib
digital values and mne.find_events), and the annotations (stimuli, gaps, alarm, marker) through both readers,
including MNE's rejection of the BAD_gap segments.
"""

import json
import math
import os
import sys

import numpy as np
import pyedflib

HERE = os.path.dirname(os.path.abspath(__file__))
FAILURES = []


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print("FAIL:", what)


def stimulator_name(s):
    # serde: "left_median" for named stimulators, {"other": code} otherwise.
    if isinstance(s, dict):
        return f"other_{s['other']}"
    return s


CODES = {"left_median": 1, "right_median": 2, "left_ulnar": 3, "right_ulnar": 4, "left_tibial": 5,
         "right_tibial": 6, "tes": 7, "left_ear": 8, "right_ear": 9, "direct": 10}


def stimulator_code(s):
    return s["other"] if isinstance(s, dict) else CODES[s]


def unit(name):
    return "V" if name == "tes" else "dBnHL" if name in ("left_ear", "right_ear") else "mA"


def stim_text(s):
    name = stimulator_name(s["stimulator"])
    t = f"stim {name} {s['intensity_tenths'] // 10}.{s['intensity_tenths'] % 10} {unit(name)} {s['pulse_width_us']}us"
    if s["pulses"] != 1:
        t += f" x{s['pulses']}"
    return t


def expected_annotations(exp, fs):
    d = exp["device"]
    first = exp["first_index"]
    anns = [(0.0, None, f"ionm start session {d['session_id']} sample {first} protocol {d['protocol_version']} "
                        f"firmware {d['firmware_version']}")]
    for s in exp["stimuli"]:
        anns.append(((s["sample_index"] - first) / fs, None, stim_text(s)))
    for g in exp["gaps"]:
        n = g["to"] - g["from"]
        anns.append(((g["from"] - first) / fs, n / fs, f"BAD_gap {g['cause']} {n} samples {g['frames']} frames"))
    for e in exp["events"]:
        if e["type"] == "alarm":
            anns.append((e["stream_s"], None, f"alarm {e['state']} {e['class']} {e['kind']} {e['trace']}: {e['message']}"))
        elif e["type"] == "marker":
            anns.append((e["stream_s"], None, f"marker {e['kind']}: {e['text']}"))
    return anns


def match_annotations(got, want, reader):
    """Every expected annotation is present (onset within 1 µs: EDFlib keeps 100 ns), and nothing else of the
    kinds we expect (stim, gap) was written."""
    left = list(got)
    for onset, dur, text in want:
        hit = next((g for g in left if g[2] == text and abs(g[0] - onset) < 1e-6
                    and (dur is None or (g[1] is not None and abs(g[1] - dur) < 1e-6))), None)
        check(hit is not None, f"{reader}: annotation {text!r} at {onset} s (duration {dur}) missing")
        if hit is not None:
            left.remove(hit)
    extra = [g for g in left if g[2].startswith(("stim ", "BAD_gap "))]
    check(not extra, f"{reader}: unexpected annotations {extra[:5]}")


def expected_digital(exp, samples, n_records, spr, nch):
    """The digital values of every data signal over the file: raw samples in the runs, 0 in padding."""
    first = exp["first_index"]
    out = np.zeros((n_records * spr, nch), dtype=np.int64)
    valid = np.zeros(n_records * spr, dtype=bool)
    row = 0
    for start, n in exp["runs"]:
        out[start - first:start - first + n] = samples[row:row + n]
        valid[start - first:start - first + n] = True
        row += n
    check(row == samples.shape[0], f"npy rows {samples.shape[0]} vs runs {row}")
    return out, valid


def expected_trigger(exp, length):
    first = exp["first_index"]
    trig = np.zeros(length, dtype=np.int64)
    for s in exp["stimuli"]:
        k = s["sample_index"] - first
        if 0 <= k < length:
            code = stimulator_code(s["stimulator"])
            trig[k] = code if trig[k] == 0 else min(trig[k], code)
    return trig


def check_fixture():
    path = os.path.join(HERE, "recording.bdf")
    with open(os.path.join(HERE, "recording_expected.json")) as f:
        exp = json.load(f)
    samples = np.load(os.path.join(HERE, exp["samples_file"]))
    dev = exp["device"]
    labels = [c["label"] for c in dev["channels"]]
    gains_uv = np.array([c["gain_nv_per_lsb"] * 1e-3 for c in dev["channels"]])
    fs = dev["sample_rate_hz"]
    nch = len(labels)
    spr = exp["record_samples"]

    # --- pyedflib (EDFlib) ---
    r = pyedflib.EdfReader(path)
    check(r.filetype == pyedflib.FILETYPE_BDFPLUS, f"pyedflib filetype {r.filetype} (BDF+C expected)")
    check(r.datarecords_in_file == exp["records"], f"records {r.datarecords_in_file}")
    check(abs(r.datarecord_duration - spr / fs) < 1e-12, f"record duration {r.datarecord_duration}")
    check(r.getSignalLabels() == labels + ["Stimulus"], f"labels {r.getSignalLabels()}")
    check(r.getPatientCode() in ("", "X"), f"patient code {r.getPatientCode()!r}")
    check(r.getEquipment() == "ionm", f"equipment {r.getEquipment()!r}")
    start = r.getStartdatetime()
    check((start.year, start.month, start.day, start.hour, start.minute, start.second) == (2025, 1, 2, 3, 4, 5),
          f"start {start}")
    n_records = r.datarecords_in_file
    want_dig, valid = expected_digital(exp, samples, n_records, spr, nch)
    tol_uv = 0.0
    for c in range(nch):
        check(r.getSampleFrequency(c) == fs, f"{labels[c]} rate {r.getSampleFrequency(c)}")
        check(r.getPhysicalDimension(c) == "uV", f"{labels[c]} unit {r.getPhysicalDimension(c)!r}")
        check((r.getDigitalMinimum(c), r.getDigitalMaximum(c)) == (dev["adc_min"], dev["adc_max"]),
              f"{labels[c]} digital range")
        dig = r.readSignal(c, digital=True).astype(np.int64)
        check(np.array_equal(dig, want_dig[:, c]), f"{labels[c]}: digital samples differ from the raw ADC values "
                                                   f"({np.count_nonzero(dig != want_dig[:, c])} of {len(dig)})")
        # Physical: raw × gain, up to the rounding of the 8-character physical fields (a linear error, largest at
        # the rails): its bound comes from the header itself, and must stay below the documented 0.5 µV.
        g = gains_uv[c]
        pmin, pmax = r.getPhysicalMinimum(c), r.getPhysicalMaximum(c)
        bound = max(abs(pmin - dev["adc_min"] * g), abs(pmax - dev["adc_max"] * g))
        tol_uv = max(tol_uv, bound)
        check(bound < 0.5, f"{labels[c]}: physical fields {pmin} {pmax} off by {bound} µV")
        phys = r.readSignal(c)
        err = np.max(np.abs(phys[valid] - want_dig[valid, c] * g))
        check(err <= bound + 1e-6, f"{labels[c]}: physical error {err} µV > {bound}")
    trig = r.readSignal(nch, digital=True).astype(np.int64)
    want_trig = expected_trigger(exp, n_records * spr)
    check(np.array_equal(trig, want_trig), "pyedflib: trigger channel differs "
          f"(got {np.flatnonzero(trig)[:8]}, want {np.flatnonzero(want_trig)[:8]})")
    onsets, durations, texts = r.readAnnotations()
    got = [(float(o), (float(d) if d > 0 else None), t) for o, d, t in zip(onsets, durations, texts)]
    want_anns = expected_annotations(exp, fs)
    match_annotations(got, want_anns, "pyedflib")
    r.close()
    print(f"pyedflib: {n_records} records, {nch} channels × {n_records * spr} samples, "
          f"{len(exp['stimuli'])} stimuli, {len(got)} annotations: OK" if not FAILURES else "pyedflib: failures")

    # --- MNE ---
    import mne
    raw = mne.io.read_raw_bdf(path, stim_channel="Stimulus", preload=True, verbose="ERROR")
    check(raw.ch_names == labels + ["Stimulus"], f"MNE channels {raw.ch_names}")
    check(raw.info["sfreq"] == fs, f"MNE rate {raw.info['sfreq']}")
    data = raw.get_data(picks=labels)  # volts
    for c in range(nch):
        err = np.max(np.abs(data[c, valid] - want_dig[valid, c] * gains_uv[c] * 1e-6))
        check(err <= (tol_uv + 1e-6) * 1e-6, f"MNE {labels[c]}: error {err} V")
    events = mne.find_events(raw, stim_channel="Stimulus", shortest_event=1, consecutive=True,
                             initial_event=True, verbose="ERROR")
    want_events = [(k, int(v)) for k, v in enumerate(want_trig) if v != 0]
    got_events = [(int(e[0]) - raw.first_samp, int(e[2])) for e in events]
    check(got_events == want_events, f"MNE events {got_events[:5]} vs {want_events[:5]}")
    ann = raw.annotations
    got = [(float(o), (float(d) if d > 0 else None), t) for o, d, t in zip(ann.onset, ann.duration, ann.description)]
    match_annotations(got, want_anns, "MNE")
    # MNE treats BAD_ annotations as bad segments: omitting them drops exactly the padded gap samples.
    kept = raw.get_data(picks=labels[:1], reject_by_annotation="omit").shape[1]
    gap_samples = sum(g["to"] - g["from"] for g in exp["gaps"])
    check(kept == n_records * spr - gap_samples, f"MNE without BAD segments keeps {kept} samples, "
                                                 f"expected {n_records * spr - gap_samples}")
    print(f"MNE: samples, {len(got_events)} trigger events, annotations, BAD_gap rejection: "
          + ("OK" if not FAILURES else "failures"))


def check_partial(path):
    """A recording cut by kill -9: both readers open it and read whole records."""
    r = pyedflib.EdfReader(path, check_file_size=pyedflib.CHECK_FILE_SIZE)
    n = r.datarecords_in_file
    spr = r.getNSamples()[0] // max(n, 1)
    check(n >= 1, f"{path}: no record")
    for c in range(r.signals_in_file):
        check(len(r.readSignal(c, digital=True)) == r.getNSamples()[c], f"{path}: signal {c} length")
    r.close()
    import mne
    raw = mne.io.read_raw_bdf(path, preload=True, verbose="ERROR")
    check(raw.n_times == n * spr, f"MNE reads {raw.n_times} samples, pyedflib {n * spr}")
    print(f"{os.path.basename(path)}: {n} records readable by pyedflib and MNE")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--partial":
        check_partial(sys.argv[2])
    else:
        check_fixture()
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        sys.exit(1)
    print("all checks passed")
