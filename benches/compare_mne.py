#!/usr/bin/env python3
"""ionm replay versus the same processing written with MNE-Python: speed, and agreement block by block.

1. Records a 16-channel 20 kHz case with the simulator:
   `ionm demo --speed max --rate 20000 --sim-seconds S --record case.bdf` (skipped with --bdf FILE).
2. ionm: `ionm replay case.bdf --speed max --protocol compare.toml --events ionm.jsonl`, timed (wall time of
   the process, file reading included). compare.toml monitors two SSEP cortical traces with ionm's defaults
   (crates/ionm-dsp/PROTOCOL.md): CP4-Fz to the left median, CP3-Fz to the right median, window -10..50 ms,
   band-pass 30 Hz (-6 dB, 20 Hz transition) .. 1000 Hz (-6 dB, 400 Hz transition), 60 dB, blanking
   [-0.5, 2] ms (TES trains: + 4 ms per extra pulse), p-p rejection 100 uV, block averages of N sweeps,
   N20 (16-25 ms, minimum) and P25 (20-32 ms, maximum after N20), parabolic sub-sample peaks. The mains notch is
   switched off in both (MNE would need a second filter for it).
3. MNE, timed from reading the file to the last peak: read_raw_bdf (all channels, preloaded), find_events on the
   Stimulus channel, the same linear-interpolation blanking (numpy), raw.filter with an FIR band-pass of the same
   -6 dB points and transitions (MNE's l_freq/h_freq are pass-band edges: 40 Hz with a 20 Hz transition, 800 Hz
   with a 400 Hz transition) using a Blackman window (stop band 74 dB >= 60 dB), zero phase; mne.Epochs with
   reject=100 uV p-p; block averages of N accepted epochs, starting at the sweep where ionm's first block starts
   (ionm drops the sweeps within a filter length of the start of the stream); the same peak picking.
4. Prints both times, the ratio, and per block the latencies and amplitudes of both and their differences.
   Each side runs --repeat times (default 3, the file in the page cache) and every run's time is printed. ionm
   runs as a fresh process each time, so its median is compared. MNE runs in this one Python process: its first
   call ("cold") also pays for loading MNE's and SciPy's submodules on first use (≈ 1.5 s here), the later ones
   ("warm", their median) are the processing alone. Both ratios are printed; the warm one is the fair one.

Usage: python3 benches/compare_mne.py [--ionm target/release/ionm] [--seconds 120] [--sweeps 50] [--repeat 3]
       [--out DIR]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

FS = 20000
TRACES = [  # (ionm trace name, channel label, stimulator name, stimulator code)
    ("CP4", "CP4-Fz", "left_median", 1),
    ("CP3", "CP3-Fz", "right_median", 2),
]
WINDOW_MS = (-10.0, 50.0)
N20_MS = (16.0, 25.0)
P25_MS = (20.0, 32.0)
BLANK_MS = (-0.5, 2.0)
TRAIN_ISI_MS = 4.0
TES_CODE, TES_PULSES = 7, 5  # the simulator's default TES train (firmware-sim scenario.rs)
NOT_BLANKED = (8, 9)  # ear clicks (protocol default `off`)
REJECT_UV = 100.0


def protocol(sweeps):
    text = 'name = "compare_mne"\nmains_hz = 50\n'
    for name, label, stim, _ in TRACES:
        text += (
            f'\n[[channel]]\nlabel = "{label}"\nname = "{name}"\nmodality = "ssep-upper"\nsite = "cortical"\n'
            f'stimulators = ["{stim}"]\nnotch = false\nsweeps = {sweeps}\n'
        )
    return text


def peak(y, t_ms, lo, hi, sign, after=None):
    """Extremum of sign*y in [lo, hi] ms (after `after` ms if given), with parabolic interpolation."""
    mask = (t_ms >= lo) & (t_ms <= hi)
    if after is not None:
        mask &= t_ms > after
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    k = idx[np.argmax(sign * y[idx])]
    lat, val = t_ms[k], y[k]
    if 0 < k < len(y) - 1:
        a, b, c = y[k - 1], y[k], y[k + 1]
        den = a - 2 * b + c
        if den != 0:
            d = 0.5 * (a - c) / den
            if abs(d) <= 1:
                lat = t_ms[k] + d * 1000.0 / FS
                val = b - 0.25 * (a - c) * d
    return lat, val


def measure(avg_uv, t_ms):
    n20 = peak(avg_uv, t_ms, *N20_MS, -1)
    if n20 is None:
        return None, None
    p25 = peak(avg_uv, t_ms, *P25_MS, +1, after=n20[0])
    if p25 is None:
        return n20[0], None
    return n20[0], p25[1] - n20[1]


def run_mne(bdf, first_last_stim, sweeps):
    import mne

    mne.set_log_level("ERROR")
    t0 = time.perf_counter()
    raw = mne.io.read_raw_bdf(bdf, preload=True, stim_channel="Stimulus")
    events = mne.find_events(raw, stim_channel="Stimulus", shortest_event=1, initial_event=True, consecutive=True)
    picks = [raw.ch_names.index(label) for _, label, _, _ in TRACES]
    data = raw._data  # preloaded, volts
    n = data.shape[1]
    # Blanking: a straight line between the samples just outside the window, before filtering.
    for s, _, code in events:
        if code in NOT_BLANKED:
            continue
        end_ms = BLANK_MS[1] + (TRAIN_ISI_MS * (TES_PULSES - 1) if code == TES_CODE else 0.0)
        a = s + int(np.floor(BLANK_MS[0] * FS / 1000.0)) - 1
        b = s + int(np.ceil(end_ms * FS / 1000.0))
        if a < 0 or b >= n:
            continue
        w = np.linspace(0.0, 1.0, b - a + 1)[1:-1]
        for p in picks:
            data[p, a + 1 : b] = data[p, a] + (data[p, b] - data[p, a]) * w
    raw.filter(
        l_freq=40.0,
        h_freq=800.0,
        picks=picks,
        l_trans_bandwidth=20.0,
        h_trans_bandwidth=400.0,
        filter_length="auto",
        method="fir",
        phase="zero",
        fir_window="blackman",
        fir_design="firwin",
    )
    results = {}
    for (name, label, _, code), p in zip(TRACES, picks):
        ev = events[events[:, 2] == code]
        tmin = WINDOW_MS[0] / 1000.0
        tmax = WINDOW_MS[1] / 1000.0 - 1.0 / FS  # ionm's window is [start, end)
        ep = mne.Epochs(
            raw, ev, event_id={name: code}, tmin=tmin, tmax=tmax, picks=[p], baseline=None,
            reject=dict(eeg=REJECT_UV * 1e-6), preload=True,
        )
        kept = ev[ep.selection, 0]
        y = ep.get_data(copy=False)[:, 0, :] * 1e6
        t_ms = ep.times * 1000.0
        # Blocks of N accepted sweeps, starting where ionm's first block starts.
        first = first_last_stim.get(name)
        start = 0
        if first is not None:
            pos = int(np.searchsorted(kept, first))
            start = max(pos - (sweeps - 1), 0)
        blocks = []
        for k in range(start, len(kept) - sweeps + 1, sweeps):
            lat, amp = measure(y[k : k + sweeps].mean(axis=0), t_ms)
            blocks.append({"last_stimulus": int(kept[k + sweeps - 1]), "latency_ms": lat, "amplitude_uv": amp})
        results[name] = {"blocks": blocks, "rejected": int(len(ev) - len(kept)), "epochs": int(len(ev))}
    return time.perf_counter() - t0, results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ionm", default="target/release/ionm")
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--sweeps", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side; medians are compared")
    ap.add_argument("--bdf", help="an existing 16-channel 20 kHz ionm recording (else one is made)")
    ap.add_argument("--out", help="directory for the JSON results (default: a temporary directory)")
    a = ap.parse_args()
    work = a.out or tempfile.mkdtemp(prefix="ionm-compare-")
    os.makedirs(work, exist_ok=True)
    bdf = a.bdf or os.path.join(tempfile.mkdtemp(prefix="ionm-compare-bdf-"), "case.bdf")
    if not a.bdf:
        cmd = [a.ionm, "demo", "--speed", "max", "--rate", str(FS), "--sim-seconds", str(a.seconds),
               "--record", bdf, "--headless", "--quiet"]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    prot = os.path.join(work, "compare.toml")
    with open(prot, "w") as f:
        f.write(protocol(a.sweeps))
    events_path = os.path.join(work, "ionm.jsonl")
    cmd = [a.ionm, "replay", bdf, "--speed", "max", "--protocol", prot, "--events", events_path,
           "--headless", "--quiet"]
    print("$", " ".join(cmd), flush=True)
    def timed(c):
        t = time.perf_counter()
        subprocess.run(c, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t

    repeat = max(1, a.repeat)
    runs_ionm = [timed(cmd) for _ in range(repeat)]
    cmd_full = [a.ionm, "replay", bdf, "--speed", "max", "--headless", "--quiet"]
    runs_ionm_full = [timed(cmd_full) for _ in range(repeat)]
    t_ionm, t_ionm_full = statistics.median(runs_ionm), statistics.median(runs_ionm_full)

    ionm = {name: [] for name, *_ in TRACES}
    ionm_rejected = {name: 0 for name, *_ in TRACES}
    with open(events_path) as f:
        for line in f:
            e = json.loads(line)
            if e.get("type") == "average" and e["trace"] in ionm:
                ionm[e["trace"]].append(e)
                ionm_rejected[e["trace"]] += e.get("rejected", 0)
    first = {k: round(v[0]["stream_s"] * FS) for k, v in ionm.items() if v}
    runs_mne = []
    for _ in range(repeat):
        t, mne_res = run_mne(bdf, first, a.sweeps)
        runs_mne.append(t)
    t_mne_cold = runs_mne[0]
    t_mne = statistics.median(runs_mne[1:]) if len(runs_mne) > 1 else t_mne_cold

    import mne

    size_mb = os.path.getsize(bdf) / 1e6
    print(f"\nrecording: {bdf} ({size_mb:.0f} MB, 16 ch x {FS} Hz, {a.seconds:.0f} s); blocks of {a.sweeps} sweeps")
    runs = lambda v: ", ".join(f"{x:.3f}" for x in v)
    print(f"medians of {repeat} runs each (runs in s, in order)")
    print(f"ionm replay (2 traces, compare.toml): {t_ionm:.3f} s wall (whole process, file reading included) "
          f"[{runs(runs_ionm)}]")
    print(f"ionm replay (sim-default, 16 channels, 20 traces): {t_ionm_full:.3f} s wall [{runs(runs_ionm_full)}]")
    print(f"MNE {mne.__version__} (read, events, blanking, filter, epochs, rejection, averages, peaks): "
          f"warm {t_mne:.3f} s, cold (first call) {t_mne_cold:.3f} s [{runs(runs_mne)}]")
    print(f"ratio MNE / ionm (same 2 traces): {t_mne / t_ionm:.1f}x warm, {t_mne_cold / t_ionm:.1f}x cold")
    summary = {"seconds": a.seconds, "sweeps": a.sweeps, "ionm_s": t_ionm, "ionm_full_s": t_ionm_full,
               "mne_warm_s": t_mne, "mne_cold_s": t_mne_cold, "mne_version": mne.__version__, "runs": {"ionm_s": runs_ionm,
               "ionm_full_s": runs_ionm_full, "mne_s": runs_mne}, "traces": {}}
    for name, *_ in TRACES:
        ib, mb = ionm[name], mne_res[name]["blocks"]
        print(f"\ntrace {name}: ionm {len(ib)} averages ({ionm_rejected[name]} sweeps rejected); MNE {len(mb)} blocks "
              f"({mne_res[name]['rejected']} of {mne_res[name]['epochs']} epochs rejected)")
        print(" seq  last stim    ionm N20 ms   MNE N20 ms    diff ms   ionm N20-P25 uV  MNE uV    diff uV")
        dl, da, rows = [], [], []
        for k, (i, m) in enumerate(zip(ib, mb)):
            same = round(i["stream_s"] * FS) == m["last_stimulus"]
            il, ia, ml, ma = i["latency_ms"], i["amplitude_uv"], m["latency_ms"], m["amplitude_uv"]
            d_l = il - ml if il is not None and ml is not None else float("nan")
            d_a = ia - ma if ia is not None and ma is not None else float("nan")
            dl.append(d_l)
            da.append(d_a)
            rows.append({"seq": k, "same_sweeps": same, "ionm_latency_ms": il, "mne_latency_ms": ml,
                         "ionm_amplitude_uv": ia, "mne_amplitude_uv": ma})
            fmt = lambda v, p: "-" if v is None else f"{v:.{p}f}"
            print(f" {k:3d}  {m['last_stimulus']:9d}{'' if same else '*'}  {fmt(il, 3):>11}  {fmt(ml, 3):>11}  "
                  f"{d_l:+9.4f}  {fmt(ia, 3):>15}  {fmt(ma, 3):>7}  {d_a:+9.4f}")
        if dl:
            print(f" max |diff|: latency {np.nanmax(np.abs(dl)):.4f} ms, amplitude {np.nanmax(np.abs(da)):.4f} uV "
                  f"(* = the blocks do not end on the same stimulus)")
        summary["traces"][name] = {"blocks": rows, "ionm_rejected": ionm_rejected[name],
                                   "mne_rejected": mne_res[name]["rejected"]}
    with open(os.path.join(work, "compare_mne.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
