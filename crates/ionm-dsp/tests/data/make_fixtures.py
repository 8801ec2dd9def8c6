#!/usr/bin/env python3
"""Reference fixtures for ionm-dsp, computed with NumPy/SciPy (independent of the Rust code).

Run from this directory:  python3 make_fixtures.py   (needs numpy, scipy; writes *.json here)

- filters.json  : for each default filter of the presets, the taps (a subsample plus sums) designed with
                  scipy.signal.kaiserord + scipy.signal.firwin per band edge, and |H| from scipy.signal.freqz on a
                  grid; the pass/stop-band tolerances, checked here against SciPy's own design.
- filtered.json : an integer test signal (defined by a formula that the Rust test re-implements) and SciPy's
                  zero-phase application of the same taps (full convolution, delay removed, both ends extended
                  with the end samples), every 7th output sample.
- evoked.json   : noise-free synthetic SSEP (with a stimulus artifact), MEP and BAEP streams (parameters only),
                  and the true latencies/amplitudes after filtering: the artifact-free waveform is filtered by
                  SciPy, averaged over the same stimuli, and evaluated at 1/50-sample resolution by filtering
                  copies of the stream sampled with fractional offsets (band-limited interpolation).

The filter design rule (what the Rust `design::design` does) is restated here: every filter is a signed sum of
firwin low-passes, each with its own Kaiser length/beta from kaiserord(attenuation, transition), centred and
summed; a unit impulse is added when there is no low-pass edge; mains notches at k*f0 with -6 dB width w
are "-LP(k f0 + w/2) + LP(k f0 - w/2)" and are kept only if the notch lies inside the pass band.
"""
import json
import math

import numpy as np
import scipy
from scipy import signal

OUT = "."


def kaiser_terms(spec, fs):
    terms = []  # (sign, cutoff, numtaps, beta)

    def term(sign, cutoff, transition, atten):
        numtaps, beta = signal.kaiserord(atten, transition / (0.5 * fs))
        numtaps |= 1
        terms.append((sign, cutoff, numtaps, beta))

    hp, lp, a, notch = spec.get("highpass"), spec.get("lowpass"), spec["attenuation_db"], spec.get("notch")
    if hp:
        term(-1.0, hp[0], hp[1], a)
    if lp:
        term(1.0, lp[0], lp[1], a)
    if notch:
        lo = hp[0] + 0.5 * hp[1] if hp else 0.0
        hi = lp[0] - 0.5 * lp[1] if lp else 0.5 * fs
        half = 0.5 * notch["width_hz"] + 0.5 * notch["transition_hz"]
        for k in range(1, notch["harmonics"] + 1):
            f = k * notch["mains_hz"]
            if f - half >= lo and f + half <= hi:
                term(-1.0, f + 0.5 * notch["width_hz"], notch["transition_hz"], notch["attenuation_db"])
                term(1.0, f - 0.5 * notch["width_hz"], notch["transition_hz"], notch["attenuation_db"])
    return terms


def design(spec, fs):
    terms = kaiser_terms(spec, fs)
    n = max([t[2] for t in terms] or [1])
    h = np.zeros(n)
    c = n // 2
    if not spec.get("lowpass"):
        h[c] = 1.0
    for sign, cutoff, numtaps, beta in terms:
        lp = signal.firwin(numtaps, cutoff, window=("kaiser", beta), fs=fs)
        off = c - numtaps // 2
        h[off:off + numtaps] += sign * lp
    return h, terms


def notch_centres(spec, fs):
    notch = spec.get("notch")
    if not notch:
        return []
    hp, lp = spec.get("highpass"), spec.get("lowpass")
    lo = hp[0] + 0.5 * hp[1] if hp else 0.0
    hi = lp[0] - 0.5 * lp[1] if lp else 0.5 * fs
    half = 0.5 * notch["width_hz"] + 0.5 * notch["transition_hz"]
    fs_ = [k * notch["mains_hz"] for k in range(1, notch["harmonics"] + 1)]
    return [f for f in fs_ if f - half >= lo and f + half <= hi]


NOTCH = {"mains_hz": 50.0, "harmonics": 3, "width_hz": 6.0, "transition_hz": 4.0, "attenuation_db": 40.0}
CASES = {
    "ssep_cortical_10k": (10000.0, {"highpass": [30.0, 20.0], "lowpass": [1000.0, 400.0], "attenuation_db": 60.0,
                                    "notch": NOTCH}),
    "ssep_peripheral_10k": (10000.0, {"highpass": [10.0, 10.0], "lowpass": [2000.0, 500.0],
                                      "attenuation_db": 60.0, "notch": NOTCH}),
    "mep_10k": (10000.0, {"highpass": [10.0, 10.0], "lowpass": [2000.0, 500.0], "attenuation_db": 60.0}),
    "baep_20k": (20000.0, {"highpass": [100.0, 50.0], "lowpass": [3000.0, 1000.0], "attenuation_db": 60.0,
                           "notch": dict(NOTCH, harmonics=5)}),
    "highpass_only_10k": (10000.0, {"highpass": [100.0, 50.0], "attenuation_db": 50.0}),
    "lowpass_only_20k": (20000.0, {"lowpass": [500.0, 200.0], "attenuation_db": 80.0}),
}


def bands(spec, fs, terms):
    """Pass and stop bands with the tolerance each must meet: the sum of the Kaiser ripples of all terms
    (delta = 10^(-A/20) per term; Kaiser's formula is approximate, so 1.2x that)."""
    tol = 1.2 * sum(10 ** (-(spec["attenuation_db"] if i < (bool(spec.get("highpass")) + bool(spec.get("lowpass")))
                              else spec["notch"]["attenuation_db"]) / 20) for i, _ in enumerate(terms))
    hp, lp = spec.get("highpass"), spec.get("lowpass")
    p_lo = hp[0] + 0.5 * hp[1] if hp else 0.0
    p_hi = lp[0] - 0.5 * lp[1] if lp else 0.5 * fs
    out = []
    if hp:
        out.append(("stop", 0.0, hp[0] - 0.5 * hp[1]))
    if lp:
        out.append(("stop", lp[0] + 0.5 * lp[1], 0.5 * fs))
    edges = [p_lo]
    n = spec.get("notch")
    for f in notch_centres(spec, fs):
        half_stop = 0.5 * (n["width_hz"] - n["transition_hz"])
        half_pass = 0.5 * (n["width_hz"] + n["transition_hz"])
        out.append(("stop", f - half_stop, f + half_stop))
        edges += [f - half_pass, f + half_pass]
    edges.append(p_hi)
    for i in range(0, len(edges), 2):
        out.append(("pass", edges[i], edges[i + 1]))
    return tol, out


def amplitude(h, freqs, fs):
    _, H = signal.freqz(h, worN=np.asarray(freqs), fs=fs)
    return np.abs(H)


def make_filters():
    res = {}
    for name, (fs, spec) in CASES.items():
        h, terms = design(spec, fs)
        tol, bnds = bands(spec, fs, terms)
        # Check SciPy's design against the stated tolerances on a dense grid.
        for kind, lo, hi in bnds:
            f = np.linspace(lo, hi, 2001)
            a = amplitude(h, f, fs)
            err = np.max(np.abs(a - 1.0)) if kind == "pass" else np.max(a)
            assert err <= tol, (name, kind, lo, hi, err, tol)
        grid = sorted(set(np.round(np.concatenate([
            np.geomspace(1.0, 0.5 * fs * 0.999, 300), [b for _, lo, hi in bnds for b in (lo, hi)]]), 6)))
        grid = [g for g in grid if 0.0 <= g <= 0.5 * fs]
        step = max(1, len(h) // 400)
        res[name] = {
            "fs": fs, "spec": spec, "taps": len(h),
            "terms": [[s, c, n, b] for s, c, n, b in terms],
            "tap_index": list(range(0, len(h), step)), "tap_value": [float(v) for v in h[::step]],
            "tap_sum": float(np.sum(h)), "tap_sumsq": float(np.sum(h * h)),
            "freq": [float(g) for g in grid], "mag": [float(v) for v in amplitude(h, grid, fs)],
            "tolerance": tol, "bands": [[k, lo, hi] for k, lo, hi in bnds],
        }
    return res


def test_signal(n):
    """Integer ADC counts; the Rust test implements the same formula."""
    x = 2463534242
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        noise = (x % 2001) - 1000
        saw = (i * 37) % 4000 - 2000
        step = 5000 if (i // 3000) % 2 == 1 else 0
        spike = 20000 if i % 2500 == 100 else 0
        out[i] = 300000 + noise + saw + step + spike
    return out


def zero_phase(x, h):
    d = (len(h) - 1) // 2
    xp = np.concatenate([np.full(d, x[0]), x, np.full(d, x[-1])])
    return signal.oaconvolve(xp, h, mode="valid")


def make_filtered():
    res = {"signal": {"n": 16000, "gain_nv_per_lsb": 100}, "every": 7, "cases": {}}
    raw = test_signal(16000)
    x = raw.astype(np.float64) * 0.1
    for name in ["ssep_cortical_10k", "baep_20k"]:
        fs, spec = CASES[name]
        h, _ = design(spec, fs)
        y = zero_phase(x, h)
        res["cases"][name] = {"fs": fs, "y": [float(v) for v in y[::7]]}
    return res


# ---- evoked potentials ----

def waveform(t_ms, comps):
    y = np.zeros_like(t_ms)
    for a, mu, sd in comps:
        y += a * np.exp(-0.5 * ((t_ms - mu) / sd) ** 2)
    return y


def artifact(t_ms, art):
    if not art:
        return np.zeros_like(t_ms)
    a, tau = art["amp_uv"], art["tau_ms"]
    return np.where(t_ms >= 0, a * np.exp(-t_ms / tau), 0.0)


def stimuli(c):
    return [int(round(c["stim_start"] + k * c["stim_period"])) for k in range(c["n_stim"])]


def stream(c, offset=0.0, with_artifact=False):
    """The stream in µV with each sample taken `offset` samples later (for band-limited interpolation)."""
    fs, n = c["fs"], c["length"]
    y = np.zeros(n)
    span = int(0.15 * fs)
    for s in stimuli(c):
        lo, hi = max(0, s - span), min(n, s + span)
        t = (np.arange(lo, hi) - s + offset) * 1000.0 / fs
        y[lo:hi] += waveform(t, c["components"])
        if with_artifact:
            y[lo:hi] += artifact(t, c.get("artifact"))
    return y


def extrema(t, y, pol, lo, hi):
    m = (t >= lo) & (t <= hi)
    idx = np.flatnonzero(m)
    k = idx[np.argmax(pol * y[idx])]
    return float(t[k]), float(y[k])


def make_evoked():
    up = 50
    cases = {
        "ssep": {
            "preset_channel": ["ssep-upper", "cortical"], "filter": "ssep_cortical_10k",
            "fs": 10000.0, "gain_nv_per_lsb": 10, "dc": 50000, "stim_start": 3000, "stim_period": 10000 / 4.7,
            "n_stim": 30, "length": 70000, "window_ms": [-10.0, 50.0], "stimulator": "left_median",
            "components": [[-2.5, 19.6, 1.1], [2.0, 24.8, 1.6], [-0.8, 33.0, 2.5]],
            "artifact": {"amp_uv": 800.0, "tau_ms": 0.2},
            "peaks": [["N20", -1, 16.0, 25.0], ["P25", 1, 20.0, 32.0]],
        },
        "mep": {
            "preset_channel": ["mep", None], "filter": "mep_10k",
            "fs": 10000.0, "gain_nv_per_lsb": 100, "dc": -20000, "stim_start": 4000, "stim_period": 7000.0,
            "n_stim": 4, "length": 34000, "window_ms": [0.0, 100.0], "stimulator": "tes",
            "components": [[400.0, 24.0, 1.5], [-600.0, 27.5, 2.0], [250.0, 32.0, 2.5]],
            "artifact": {"amp_uv": 3000.0, "tau_ms": 0.2},
            "peaks": [],
            "onset_threshold_uv": 20.0, "pp_window_ms": [8.0, 90.0],
        },
        "baep": {
            "preset_channel": ["baep", None], "filter": "baep_20k",
            "fs": 20000.0, "gain_nv_per_lsb": 1, "dc": 1000, "stim_start": 6000, "stim_period": 20000 / 11.1,
            "n_stim": 20, "length": 50000, "window_ms": [0.0, 12.0], "stimulator": "left_ear",
            "components": [[0.3, 1.7, 0.25], [-0.2, 2.3, 0.3], [0.25, 3.9, 0.3], [0.5, 5.8, 0.35],
                           [-0.45, 6.9, 0.6]],
            "artifact": None,
            "peaks": [["I", 1, 1.2, 2.4], ["III", 1, 3.2, 4.8], ["V", 1, 5.0, 7.5], ["Vn", -1, 5.5, 9.5]],
        },
    }
    for name, c in cases.items():
        fs = c["fs"]
        h, _ = design(CASES[c["filter"]][1], fs)
        d = (len(h) - 1) // 2
        a = int(round(c["window_ms"][0] * fs / 1000))
        b = int(round(c["window_ms"][1] * fs / 1000))
        st = [s for s in stimuli(c) if s + a - d >= 0 and s + b + d <= c["length"]]
        assert len(st) == c["n_stim"], (name, len(st))
        # Average at 1/up-sample resolution: filter copies of the stream sampled `o/up` samples later.
        fine_t, fine_y = [], []
        for o in range(up):
            y = zero_phase(stream(c, o / up), h)
            avg = np.mean([y[s + a:s + b] for s in st], axis=0)
            fine_t.append((np.arange(a, b) + o / up) * 1000.0 / fs)
            fine_y.append(avg)
            if o == 0:
                c["average"] = [float(v) for v in avg]
        t = np.concatenate(fine_t)
        y = np.concatenate(fine_y)
        order = np.argsort(t)
        t, y = t[order], y[order]
        truth = {}
        for pname, pol, lo, hi in c["peaks"]:
            truth[pname] = extrema(t, y, pol, lo, hi)
        c["truth_peaks"] = truth
        if name == "mep":
            thr = c["onset_threshold_uv"]
            m = (t >= 8.0) & (np.abs(y) >= thr)
            k = np.flatnonzero(m)[0]
            # Linear interpolation between the two fine samples around the crossing (1/50 sample apart).
            t0, t1, y0, y1 = t[k - 1], t[k], abs(y[k - 1]), abs(y[k])
            c["truth_onset_ms"] = float(t0 + (thr - y0) / (y1 - y0) * (t1 - t0))
            w = (t >= 8.0) & (t <= 90.0)
            c["truth_pp_uv"] = float(np.max(y[w]) - np.min(y[w]))
        # For information: the same peaks on the unfiltered, artifact-free waveform.
        ta = np.arange(c["window_ms"][0], c["window_ms"][1], 0.001)
        ya = waveform(ta, c["components"])
        c["analytic_peaks"] = {p[0]: extrema(ta, ya, p[1], p[2], p[3]) for p in c["peaks"]}
    return cases


def main():
    meta = {"numpy": np.__version__, "scipy": scipy.__version__}
    for fname, fn in [("filters.json", make_filters), ("filtered.json", make_filtered), ("evoked.json", make_evoked)]:
        data = fn()
        data_out = {"generator": "make_fixtures.py", "versions": meta, "data": data}
        with open(f"{OUT}/{fname}", "w") as f:
            json.dump(data_out, f, separators=(",", ":"))
        print(fname, "written")


if __name__ == "__main__":
    main()
