#!/usr/bin/env python3
"""Which matched filter for the sequential detector (crates/ionm-monitor/src/sequential.rs, "Template shrinkage").

A simulation, independent of ionm's code: single SSEP sweeps = a band-passed P37/N45 (the simulator's tibial
cortical waveform, firmware-sim/src/montage.rs: N33 -0.25, P37 +0.85 (2.2 ms), N45 -0.7 (3.2 ms), P55 +0.3 uV;
high-passed at 30 Hz like the sweeps ionm sees) with a 10% log-normal amplitude jitter, in Gaussian noise with the
simulator's scalp spectrum (1/f, 2.8 uV RMS in 30-1000 Hz, plus 12 nV/sqrt(Hz) white, band-passed 30-1000 Hz),
at 20 kHz. A template is the mean of N = 200 sweeps; each filter is then scored on 2000 fresh sweeps by the s.d.
of the amplitude it gives, in baseline units (the sigma the CUSUM divides by: smaller is faster detection).

Filters: `diag` w = m/v (ionm before shrinkage); `js c` w = m*max(0, 1 - c*se^2/m^2)/v (positive-part James-Stein
per sample, se^2 = v/N); `gls` w = S^-1 m with S the Toeplitz noise covariance estimated from the template sweeps
(plus diagonal loading); `exact` the noiseless template (not available in practice). Also a white-noise case with
a response weaker than the template's noise per sample (the test `focal_and_global_drops_are_told_apart` in
crates/ionm-monitor/tests/detectors.rs), where shrinkage hurts: hence ionm calibrates c = 0, 1, 2 side by side and
keeps the best.

Usage: python3 benches/sequential_template.py   (numpy; about a minute)
"""

import numpy as np

rng = np.random.default_rng(2)
FS_MS = 0.05  # 20 kHz


def waveform(t):
    g = lambda c, a, w: a * np.exp(-0.5 * ((t - c) / w) ** 2)  # noqa: E731
    return g(33, -0.25, 1.0) + g(37.4, 0.85, 2.2) + g(45.5, -0.7, 3.2) + g(56, 0.3, 4.0)


def model(win):
    t = np.arange(win[0], win[1], FS_MS)
    tt = np.arange(-500, 500, FS_MS)
    spec = np.fft.rfft(waveform(tt))
    ff = np.fft.rfftfreq(len(tt), FS_MS * 1e-3)
    ff[0] = 1e-3
    spec *= 1 / np.sqrt(1 + (30 / ff) ** 8)  # 30 Hz high-pass, as the sweeps are filtered
    s = np.interp(t, tt, np.fft.irfft(spec, len(tt)))
    f = np.linspace(0.01, 1000, 400001)
    c = 2.8**2 / np.log(1000 / 30)
    psd = (c / f + 0.012**2) / (1 + (30 / f) ** 8) / (1 + (f / 1000) ** 16)
    lags = np.arange(len(t)) * FS_MS * 1e-3
    acf = np.array([np.sum(psd * np.cos(2 * np.pi * f * lag)) * (f[1] - f[0]) for lag in lags])
    cov = acf[np.abs(np.subtract.outer(np.arange(len(t)), np.arange(len(t))))]
    return s, np.linalg.cholesky(cov + 1e-9 * np.eye(len(t)))


def toeplitz(cov):
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    r = np.array([np.mean(np.diag(corr, k)) for k in range(len(sd))])
    return sd, r[np.abs(np.subtract.outer(np.arange(len(sd)), np.arange(len(sd))))]


def score(s, chol, n_template, reps, cv=0.1, gls=True):
    out = {}

    def sweeps(n):
        a = np.exp(rng.normal(0, cv, n))
        return a[:, None] * s[None, :] + (chol @ rng.normal(size=(len(s), n))).T

    for _ in range(reps):
        tm = sweeps(n_template)
        m, v = tm.mean(0), tm.var(0, ddof=1)
        se2 = v / n_template
        ws = {"diag": m / v, "exact": s / v}
        for c in (1, 2):
            ws[f"js {c}"] = m * np.maximum(0, 1 - c * se2 / m**2) / v
        if gls:
            sd, corr = toeplitz(np.cov(tm.T))
            ws["gls"] = np.linalg.solve(np.outer(sd, sd) * (corr + 0.01 * np.eye(len(s))), m)
        test = sweeps(2000)
        for k, w in ws.items():
            p = test @ w
            out.setdefault(k, []).append(p.std() / p.mean() if p.mean() > 0 else np.inf)
    return {k: round(float(np.median(x)), 2) for k, x in out.items()}


for win in [(-10, 50), (-10, 100)]:
    s, chol = model(win)
    print(f"1/f noise, P37/N45, window {win} ms, 20 kHz:", score(s, chol, 200, 6))
length = 200
x = np.arange(length) / (length - 1)
r = 10 * np.sin(np.pi * x) ** 2 * np.sin(4 * np.pi * x)
for noise, n in [(100, 100), (40, 100)]:
    print(f"white noise {noise}/sample, {n} template sweeps:", score(r, noise * np.eye(length), n, 20, 0.0, False))
