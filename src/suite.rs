//! `ionm bench --suite`: the time-to-detection scenario suite (issue 8).
//!
//! Every scenario is generated here (firmware-sim's scenario types, no files) and run in process at max speed
//! through the whole pipeline — the simulator's wire bytes, the decoder, the DSP engine, the monitor — with
//! **both detectors active at once** (`detectors = ["block", "sequential"]`): one run gives both detectors'
//! alarms, told apart by their `detector` field, and each detector is scored on its own alarms by the same
//! code as `ionm score` ([`crate::score::score`]) against the simulator's ground truth.
//!
//! The device is the simulator's first 8 channels (its SSEP montage: Erb L/R, Cv5-Fz, CP3-Fz, CP4-Fz, Pop L/R,
//! Cz-Fpz) with the SSEP channels of the `sim-default` protocol (12 traces); stimulators at 4.7 Hz each.
//! Changes start at 300 s (after both detectors have their baselines: the block detector's from three
//! 300-sweep tibial averages ≈ 190 s, the sequential detector's after 200 + 800 accepted sweeps ≈ 215 s).
//!
//! | scenario | what changes |
//! |---|---|
//! | `drop-P-step`, `drop-P-ramp` | left-tibial cortical response (Cz-Fpz, P37/N45) falls by P% at once, or over 2 min |
//! | `latency-P` | right-median cortical response (CP3-Fz, N20/P25) P% later, at once |
//! | `stable-8h` | nothing, 8 hours (1 hour with `--quick`) |
//! | `noisy-cautery` | nothing clinical, 30 min: doubled mains, cautery bursts every 100 s (all, cortical or scalp channels), electrode pops |
//! | `anaesthetic-drift` | every cortical response declines by 30% over 20 min; peripheral and cervical unchanged |
//!
//! For each scenario it also gives **Lorden's bound**: the minimum expected delay of any detector at the
//! sequential detector's false-alarm rate, `log(ARL₀) / KL` sweeps, with the per-sweep Kullback–Leibler
//! divergence from the noise the sequential detector measured on the changed trace (its σ before the change):
//! `KL = (d/σ)²/2` for a drop `d`; for a latency shift of `P`% , `KL = (D·P/P₀)²/2` from the separation `D`
//! the sequential detector's latency filter measured for its design shift `P₀` (standard deviations of one
//! sweep's projection; scaled linearly, a first-order approximation that overstates `D` for shifts beyond the
//! design one, so the bound is then lower than the true one). Ramps: the time until the divergence accumulated
//! over the ramp (growing with the square of the drop) reaches `log(ARL₀)`. These are first-order (asymptotic)
//! figures: at the suite's run lengths a CUSUM's expected delay can be ≈ 10% below them, and a median of three
//! runs more.

use crate::bench::BenchArgs;
use crate::score::{self, RunScore, Summary, median};
use anyhow::{Context, Result, bail};
use firmware_sim::scenario::{Action, Event as SimEvent, Target};
use firmware_sim::transmit::{SimReader, Speed, Transmitter};
use firmware_sim::{Group, Scenario, SimConfig, Simulator};
use ionm_core::Stimulator;
use ionm_core::events::{AlarmClass, AlarmState, Event};
use ionm_dsp::Protocol;
use ionm_io::{ReaderConfig, ReaderSource};
use ionm_monitor::sequential::{lorden_delay, siegmund_arl};
use ionm_pipeline::{Pipeline, PipelineConfig, PipelineEvent};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Onset of every change, s.
const ONSET_S: f64 = 300.0;
/// The detectors compared.
const DETECTORS: [&str; 2] = ["block", "sequential"];

/// What a scenario tests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Drop { pct: f64, ramp_s: f64 },
    Latency { pct: f64 },
    Stable,
    Noisy,
    Drift,
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    kind: Kind,
    scenario: Scenario,
    seeds: Vec<u64>,
}

fn base(name: &str, description: &str, duration_s: f64) -> Scenario {
    Scenario {
        name: name.to_owned(),
        description: description.to_owned(),
        duration_s: Some(duration_s),
        events: Vec::new(),
        ..Scenario::default()
    }
}

fn target(group: Option<Group>, stimulator: Option<Stimulator>, channels: &[&str]) -> Target {
    Target {
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        group,
        stimulator,
    }
}

/// The suite's cases (`quick`: one seed each and a 1-hour stable case).
fn cases(quick: bool, seeds: usize) -> Vec<Case> {
    let seeds_of = |n: usize, base_seed: u64| (0..n as u64).map(|i| base_seed + i).collect::<Vec<_>>();
    let n = if quick { 1 } else { seeds.max(1) };
    let mut out = Vec::new();
    for ramp_s in [0.0, 120.0] {
        for pct in [40.0, 50.0, 60.0, 70.0] {
            let name = format!("drop-{pct:.0}-{}", if ramp_s > 0.0 { "ramp" } else { "step" });
            let mut s = base(
                &name,
                "left-tibial cortical amplitude drop at 300 s",
                ONSET_S + 600.0,
            );
            s.events.push(SimEvent {
                at_s: ONSET_S,
                action: Action::Response {
                    target: target(Some(Group::Cortical), Some(Stimulator::LeftTibial), &[]),
                    amplitude_pct: -pct,
                    latency_pct: 0.0,
                    latency_ms: 0.0,
                    ramp_s,
                },
            });
            out.push(Case {
                name,
                kind: Kind::Drop { pct, ramp_s },
                scenario: s,
                seeds: seeds_of(n, 100),
            });
        }
    }
    for pct in [8.0, 10.0, 12.0, 15.0] {
        let name = format!("latency-{pct:.0}");
        let mut s = base(
            &name,
            "right-median cortical latency increase at 300 s",
            ONSET_S + 600.0,
        );
        s.events.push(SimEvent {
            at_s: ONSET_S,
            action: Action::Response {
                target: target(Some(Group::Cortical), Some(Stimulator::RightMedian), &[]),
                amplitude_pct: 0.0,
                latency_pct: pct,
                latency_ms: 0.0,
                ramp_s: 0.0,
            },
        });
        out.push(Case {
            name,
            kind: Kind::Latency { pct },
            scenario: s,
            seeds: seeds_of(n, 200),
        });
    }
    let hours = if quick { 1.0 } else { 8.0 };
    out.push(Case {
        name: format!("stable-{hours:.0}h"),
        kind: Kind::Stable,
        scenario: base("stable", "no change", hours * 3600.0),
        seeds: seeds_of(if quick { 1 } else { 2 }, 300),
    });
    let mut noisy = base(
        "noisy-cautery",
        "doubled mains, cautery every 100 s, electrode pops; responses unchanged",
        1800.0,
    );
    noisy.background.mains = 2.0;
    let scalp = ["CP3-Fz", "CP4-Fz", "Cz-Fpz"];
    let mut t = 60.0;
    let mut i = 0;
    while t < 1780.0 {
        let (tg, dur) = match i % 3 {
            0 => (target(None, None, &[]), 3.0),
            1 => (target(Some(Group::Cortical), None, &[]), 5.0),
            _ => (target(None, None, &scalp), 4.0),
        };
        noisy.events.push(SimEvent {
            at_s: t,
            action: Action::Cautery {
                target: tg,
                duration_s: dur,
            },
        });
        if i % 3 == 1 {
            noisy.events.push(SimEvent {
                at_s: t + 30.0,
                action: Action::Pop {
                    target: target(None, None, &[scalp[(i / 3) % 3]]),
                    step_uv: if i % 2 == 0 { 15_000.0 } else { -20_000.0 },
                    tau_s: 1.0,
                },
            });
        }
        t += 100.0;
        i += 1;
    }
    out.push(Case {
        name: "noisy-cautery".into(),
        kind: Kind::Noisy,
        scenario: noisy,
        seeds: seeds_of(n, 400),
    });
    let mut drift = base(
        "anaesthetic-drift",
        "every cortical response declines by 30% over 20 min from 300 s",
        ONSET_S + 1200.0 + 600.0,
    );
    drift.events.push(SimEvent {
        at_s: ONSET_S,
        action: Action::Anaesthesia {
            amplitude_pct: -30.0,
            latency_pct: 0.0,
            ramp_s: 1200.0,
        },
    });
    out.push(Case {
        name: "anaesthetic-drift".into(),
        kind: Kind::Drift,
        scenario: drift,
        seeds: seeds_of(n, 500),
    });
    out
}

/// The SSEP channels of sim-default with both detectors.
fn protocol() -> Result<Protocol> {
    let mut p = crate::run::load_protocol("sim-default")?;
    p.channels.retain(|c| {
        matches!(
            c.modality,
            ionm_dsp::protocol::Modality::SsepUpper | ionm_dsp::protocol::Modality::SsepLower
        )
    });
    p.detectors.block = true;
    p.detectors.sequential = true;
    Ok(p)
}

/// One detector's view of one run.
#[derive(Debug, Clone, Serialize)]
struct DetectorRun {
    score: RunScore,
    /// Kind of the first true alarm (`amplitude_drop`, `latency_increase`…).
    first_kind: Option<String>,
    /// Clinical alarms raised at or after the onset, and how many of them were tagged systemic.
    alarms_after_onset: usize,
    systemic_after_onset: usize,
}

#[derive(Debug, Clone, Serialize)]
struct RunResult {
    case: String,
    seed: u64,
    wall_s: f64,
    simulated_s: f64,
    detectors: BTreeMap<String, DetectorRun>,
    /// The sequential detector's per-sweep amplitude s.d. (baseline units) on the changed trace, before the
    /// change, its threshold and CUSUM k, and its latency filter's separation (standard deviations per sweep
    /// for the design latency shift; present when the latency CUSUM runs).
    sigma: Option<f64>,
    threshold: Option<f64>,
    reference: Option<f64>,
    latency_separation: Option<f64>,
    /// Stimulus rate of the changed trace's stimulator, Hz.
    sweep_rate_hz: Option<f64>,
    /// Baseline latency of the changed response (truth), ms.
    baseline_latency_ms: Option<f64>,
}

fn run_one(
    protocol: &Protocol,
    case: &Case,
    seed: u64,
    out_dir: Option<&std::path::Path>,
) -> Result<RunResult> {
    let mut sim = Simulator::new(SimConfig {
        channels: 8,
        sample_rate_hz: 10_000,
        seed,
        mains_hz: 50.0,
        scenario: case.scenario.clone(),
    })
    .context("cannot configure the simulator")?;
    // The truth's stimulus columns (for delays in sweeps) are only kept with the per-sweep columns.
    sim.set_record_sweeps(true);
    let slot = Arc::new(Mutex::new(None));
    let reader = SimReader::new(Transmitter::new(sim), Speed::Max).with_truth(slot.clone());
    let started = Instant::now();
    let pipeline = Pipeline::start(
        ReaderSource::new("simulator (suite)", reader),
        ReaderConfig {
            lossless: true,
            ..Default::default()
        },
        PipelineConfig::new(protocol.clone()),
    )
    .context("cannot start the pipeline")?;
    let mut events = Vec::new();
    loop {
        match pipeline.events().recv() {
            Ok(PipelineEvent::Event(e)) => events.push(e),
            Ok(PipelineEvent::Fatal(m)) => bail!("{}: {m}", case.name),
            Ok(PipelineEvent::Finished) | Err(_) => break,
        }
    }
    for e in pipeline.stop() {
        if let PipelineEvent::Event(e) = e {
            events.push(e);
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let truth = slot
        .lock()
        .ok()
        .and_then(|mut s| s.take())
        .context("the simulator did not finish")?;
    let simulated_s = truth.samples_generated as f64 / f64::from(truth.sample_rate_hz.max(1));
    // Trace → (label, stimulator), from the averages.
    let mut pair_of: BTreeMap<String, (String, Stimulator)> = BTreeMap::new();
    for e in &events {
        if let Event::Average(a) = e {
            pair_of
                .entry(a.trace.clone())
                .or_insert_with(|| (a.channel.clone(), a.stimulator));
        }
    }
    let onset = truth
        .events
        .iter()
        .find(|e| matches!(e.kind.as_str(), "response" | "anaesthesia"));
    let mut detectors = BTreeMap::new();
    for d in DETECTORS {
        let s = score::score(&events, &truth, Some(d));
        let first = s.changes.first().and_then(|c| {
            let p = c
                .pairs
                .iter()
                .find(|p| p.delay_s == c.delay_s && p.alarm_s.is_some())?;
            events.iter().find_map(|e| match e {
                Event::Alarm(a)
                    if a.detector == d
                        && a.state == AlarmState::Raised
                        && Some(a.stream_s) == p.alarm_s
                        && a.trace.as_ref().and_then(|t| pair_of.get(t))
                            == Some(&(p.channel.clone(), p.stimulator)) =>
                {
                    serde_json::to_value(a.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                }
                _ => None,
            })
        });
        let after: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Alarm(a)
                    if a.detector == d
                        && a.class == AlarmClass::Clinical
                        && a.state == AlarmState::Raised
                        && onset.is_some_and(|o| a.stream_s >= o.onset_s) =>
                {
                    Some(a.systemic)
                }
                _ => None,
            })
            .collect();
        detectors.insert(
            d.to_owned(),
            DetectorRun {
                score: s,
                first_kind: first,
                alarms_after_onset: after.len(),
                systemic_after_onset: after.iter().filter(|s| **s).count(),
            },
        );
    }
    // The sequential detector's noise on the changed trace, from the last stats event before the onset.
    let changed: Option<(String, Stimulator)> = onset.and_then(|o| {
        let stim = o.stimulator?;
        truth
            .responses
            .iter()
            .find(|r| o.channels.contains(&r.label) && r.stimulator == stim)
            .map(|r| (r.label.clone(), r.stimulator))
    });
    let mut result = RunResult {
        case: case.name.clone(),
        seed,
        wall_s,
        simulated_s,
        detectors,
        sigma: None,
        threshold: None,
        reference: None,
        latency_separation: None,
        sweep_rate_hz: None,
        baseline_latency_ms: None,
    };
    if let (Some(o), Some(pair)) = (onset, changed.as_ref()) {
        let traces: Vec<&String> = pair_of
            .iter()
            .filter(|(_, p)| *p == pair)
            .map(|(t, _)| t)
            .collect();
        let ev = events.iter().rev().find_map(|e| match e {
            Event::Stats(s) if s.stream_s <= o.onset_s => s
                .evidence
                .iter()
                .find(|v| traces.contains(&&v.trace) && v.detector == "sequential"),
            _ => None,
        });
        if let Some(v) = ev {
            result.sigma = Some(v.sigma);
            result.threshold = Some(v.threshold);
            result.reference = Some(v.reference);
            result.latency_separation = v.latency_separation;
        }
        let n = truth.stimuli.stimulator.iter().filter(|s| **s == pair.1).count();
        result.sweep_rate_hz = Some(n as f64 / simulated_s.max(1e-9));
        result.baseline_latency_ms = truth.response(&pair.0, pair.1).map(|r| r.baseline_latency_ms);
    }
    if let Some(dir) = out_dir {
        let stem = dir.join(format!("{}-seed{seed}", case.name));
        let mut w = crate::events::EventSink::open(&stem.with_extension("events.jsonl"), false)?;
        for e in &events {
            w.write(e)?;
        }
        std::fs::write(stem.with_extension("truth.json"), truth.to_json()?)
            .with_context(|| format!("cannot write {}", stem.display()))?;
    }
    Ok(result)
}

/// Lorden's bound for one run, sweeps, at the trace's in-control ARL (its amplitude CUSUM runs at that divided by
/// its share of the false alarms when the latency CUSUM runs too).
fn lorden_sweeps(kind: Kind, r: &RunResult, design_drop: f64, design_latency: f64) -> Option<f64> {
    let sigma = r.sigma.filter(|s| *s > 0.0)?;
    let h = r.threshold?;
    let k = r.reference.unwrap_or(0.5 * design_drop / sigma);
    let per_cusum = siegmund_arl(k, h, 0.0);
    let latency_share = ionm_monitor::SequentialConfig::default().latency_share;
    let arl = if r.latency_separation.is_some() {
        per_cusum * (1.0 - latency_share)
    } else {
        per_cusum
    };
    match kind {
        Kind::Drop { pct, ramp_s } if ramp_s > 0.0 => {
            let delta = pct / 100.0 / sigma;
            Some(ramp_delay(
                0.5 * delta * delta,
                ramp_s * r.sweep_rate_hz?,
                arl.ln(),
            ))
        }
        Kind::Drop { pct, .. } => Some(lorden_delay(pct / 100.0 / sigma, arl)),
        // The latency filter's separation scaled linearly from the design shift to this one (a first-order
        // approximation: beyond the design shift the true separation grows more slowly).
        Kind::Latency { pct } => {
            let sep = r.latency_separation.filter(|s| *s > 0.0)?;
            Some(lorden_delay(sep * pct / 100.0 / design_latency, arl))
        }
        _ => None,
    }
}

/// Lorden's bound carried over to a linear ramp (the drop grows in proportion to time over `ramp_sweeps`, then
/// stays): the sweeps after the onset until the Kullback–Leibler divergence accumulated reaches `log_arl`, with
/// `kl` per sweep at the full drop — `kl·(n/R)²` per sweep at sweep `n < R`, so `kl·n³/(3R²)` by then, and
/// `kl·R/3` at the ramp's end. Zero ramp: `log_arl / kl`, the step's bound.
fn ramp_delay(kl: f64, ramp_sweeps: f64, log_arl: f64) -> f64 {
    let r = ramp_sweeps.max(0.0);
    if kl * r / 3.0 >= log_arl {
        (3.0 * log_arl * r * r / kl).cbrt()
    } else {
        r + (log_arl - kl * r / 3.0) / kl
    }
}

/// One row of the table (one case, one detector, pooled over seeds).
#[derive(Debug, Clone, Serialize)]
struct Row {
    case: String,
    detector: String,
    summary: Summary,
    /// Median delay with every miss counted as later than any detection (`None` when half or more are
    /// missed): comparable between detectors of different sensitivity, unlike the median of detections only.
    median_delay_all_s: Option<f64>,
    /// Runs whose first true alarm was labelled latency / amplitude.
    labelled_latency: usize,
    labelled_amplitude: usize,
    /// Clinical alarms at or after the onset, and how many were tagged systemic.
    alarms_after_onset: usize,
    systemic_after_onset: usize,
    /// Median Lorden bound over the seeds, sweeps and seconds (sequential rows only).
    lorden_sweeps: Option<f64>,
    lorden_s: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Check {
    what: String,
    pass: bool,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Report {
    command: String,
    /// The sequential detector's settings the suite ran with, in words.
    sequential: String,
    quick: bool,
    host_cpu: String,
    wall_s: f64,
    rows: Vec<Row>,
    checks: Vec<Check>,
    runs: Vec<RunResult>,
}

/// Runs the suite.
pub fn run(args: &BenchArgs) -> Result<()> {
    let mut protocol = protocol()?;
    if let Some(h) = args.suite_false_alarm_hours {
        if !(h.is_finite() && h > 0.0) {
            bail!("--suite-false-alarm-hours must be a positive number of hours, not {h}");
        }
        protocol.detectors.false_alarm_hours = h;
    }
    if args.suite_no_block_floor {
        protocol.detectors.block_floor = false;
    }
    if args.suite_no_latency_cusum {
        protocol.detectors.latency_cusum = false;
    }
    let design_drop = protocol.detectors.design_drop;
    let design_latency = protocol.detectors.design_latency;
    let mut cases = cases(args.quick, args.suite_seeds);
    if !args.suite_cases.is_empty() {
        cases.retain(|c| args.suite_cases.iter().any(|f| c.name.contains(f.as_str())));
        if cases.is_empty() {
            bail!("no suite case matches {:?}", args.suite_cases);
        }
    }
    for c in &mut cases {
        for s in &mut c.seeds {
            *s += args.suite_seed_offset;
        }
    }
    let jobs: Vec<(usize, u64)> = cases
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.seeds.iter().map(move |&s| (i, s)))
        .collect();
    // Longest first, so the two workers finish together.
    let mut jobs = jobs;
    jobs.sort_by(|a, b| {
        let d = |j: &(usize, u64)| cases[j.0].scenario.duration_s.unwrap_or(0.0);
        d(b).total_cmp(&d(a))
    });
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<RunResult>> = Mutex::new(Vec::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let workers = args.suite_threads.max(1);
    let out_dir = args.suite_out.as_deref();
    if let Some(d) = out_dir {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for w in 0..workers {
            let (jobs, cases, protocol, next, results, errors) =
                (&jobs, &cases, &protocol, &next, &results, &errors);
            let _ = design_drop;
            handles.push(
                std::thread::Builder::new()
                    .name(format!("ionm-suite-{w}"))
                    .spawn_scoped(scope, move || {
                        loop {
                            let j = next.fetch_add(1, Relaxed);
                            let Some(&(ci, seed)) = jobs.get(j) else { break };
                            let case = &cases[ci];
                            match run_one(protocol, case, seed, out_dir) {
                                Ok(r) => {
                                    tracing::info!(
                                        "suite: {} seed {} done ({:.0} s of signal in {:.1} s) [{}/{}]",
                                        case.name,
                                        seed,
                                        r.simulated_s,
                                        r.wall_s,
                                        j + 1,
                                        jobs.len()
                                    );
                                    if let Ok(mut v) = results.lock() {
                                        v.push(r);
                                    }
                                }
                                Err(e) => {
                                    if let Ok(mut v) = errors.lock() {
                                        v.push(format!("{} seed {seed}: {e:#}", case.name));
                                    }
                                }
                            }
                        }
                    })?,
            );
        }
        for h in handles {
            if h.join().is_err() {
                bail!("a suite worker panicked");
            }
        }
        Ok(())
    })?;
    let errors = errors.into_inner().unwrap_or_default();
    if !errors.is_empty() {
        bail!("suite runs failed: {}", errors.join("; "));
    }
    let mut runs = results.into_inner().unwrap_or_default();
    runs.sort_by(|a, b| (&a.case, a.seed).cmp(&(&b.case, b.seed)));
    let mut rows = Vec::new();
    for case in &cases {
        let of_case: Vec<&RunResult> = runs.iter().filter(|r| r.case == case.name).collect();
        for d in DETECTORS {
            let dr: Vec<&DetectorRun> = of_case.iter().filter_map(|r| r.detectors.get(d)).collect();
            let scores: Vec<RunScore> = dr.iter().map(|x| x.score.clone()).collect();
            let lorden: Vec<(f64, f64)> = of_case
                .iter()
                .filter_map(|r| {
                    let s = lorden_sweeps(case.kind, r, design_drop, design_latency)?;
                    Some((s, s / r.sweep_rate_hz.filter(|x| *x > 0.0)?))
                })
                .collect();
            let seq = d == "sequential";
            let mut all: Vec<f64> = scores
                .iter()
                .flat_map(|s| &s.changes)
                .map(|c| c.delay_s.unwrap_or(f64::INFINITY))
                .collect();
            rows.push(Row {
                case: case.name.clone(),
                detector: d.to_owned(),
                median_delay_all_s: median(&mut all).filter(|m| m.is_finite()),
                summary: Summary::of(&scores),
                labelled_latency: dr
                    .iter()
                    .filter(|x| x.first_kind.as_deref() == Some("latency_increase"))
                    .count(),
                labelled_amplitude: dr
                    .iter()
                    .filter(|x| x.first_kind.as_deref() == Some("amplitude_drop"))
                    .count(),
                alarms_after_onset: dr.iter().map(|x| x.alarms_after_onset).sum(),
                systemic_after_onset: dr.iter().map(|x| x.systemic_after_onset).sum(),
                lorden_sweeps: if seq {
                    median(&mut lorden.iter().map(|x| x.0).collect::<Vec<_>>())
                } else {
                    None
                },
                lorden_s: if seq {
                    median(&mut lorden.iter().map(|x| x.1).collect::<Vec<_>>())
                } else {
                    None
                },
            });
        }
    }
    let checks = checks(&cases, &rows, &runs);
    let d = &protocol.detectors;
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        sequential: format!(
            "false_alarm_hours {}, design_drop {}, design_latency {}, template {} + calibration {} sweeps, block floor {}, latency CUSUM {}; seed offset {}",
            d.false_alarm_hours,
            d.design_drop,
            d.design_latency,
            d.template_sweeps,
            d.calibration_sweeps,
            if d.block_floor { "on" } else { "off" },
            if d.latency_cusum { "on" } else { "off" },
            args.suite_seed_offset
        ),
        quick: args.quick,
        host_cpu: crate::bench::cpu_model(),
        wall_s: started.elapsed().as_secs_f64(),
        rows,
        checks,
        runs,
    };
    if let Some(d) = out_dir {
        // Both forms beside the raw events, from the same run.
        std::fs::write(d.join("suite.json"), serde_json::to_string_pretty(&report)?)?;
        let mut text = Vec::new();
        write_text(&mut text, &report)?;
        std::fs::write(d.join("suite.txt"), text)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write_text(&mut out, &report)?;
    }
    Ok(())
}

fn find<'a>(rows: &'a [Row], case: &str, d: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.case == case && r.detector == d)
}

/// The acceptance criteria, evaluated on this run of the suite.
fn checks(cases: &[Case], rows: &[Row], runs: &[RunResult]) -> Vec<Check> {
    let mut out = Vec::new();
    for c in cases {
        let targeted = match c.kind {
            Kind::Drop { pct, .. } => (50.0..=70.0).contains(&pct),
            Kind::Latency { pct } => (10.0..=15.0).contains(&pct),
            _ => false,
        };
        if targeted {
            let (b, s) = (find(rows, &c.name, "block"), find(rows, &c.name, "sequential"));
            // Misses count as later than any detection (a median of detections only would reward missing
            // the slow cases); both medians are printed.
            let bm = b.and_then(|r| r.median_delay_all_s);
            let sm = s.and_then(|r| r.median_delay_all_s);
            let det = |r: Option<&Row>| fmt(r.and_then(|r| r.summary.median_delay_s), 1);
            let pass = match (bm, sm) {
                (Some(b), Some(s)) => s <= 0.5 * b,
                // The block detector missed half or more: its median is beyond the run.
                (None, Some(_)) => true,
                _ => false,
            };
            out.push(Check {
                what: format!("{}: sequential median delay ≤ ½ block's (misses = ∞)", c.name),
                pass,
                detail: format!(
                    "sequential {} s, block {} s (∞: half or more missed); medians of detections only: \
                     sequential {} s, block {} s",
                    fmt(sm, 1).replace('-', "∞"),
                    fmt(bm, 1).replace('-', "∞"),
                    det(s),
                    det(b)
                ),
            });
        }
        if matches!(c.kind, Kind::Stable | Kind::Noisy) {
            let f = |d| find(rows, &c.name, d).and_then(|r| r.summary.false_per_h);
            let (b, s) = (f("block").unwrap_or(0.0), f("sequential").unwrap_or(0.0));
            out.push(Check {
                what: format!("{}: sequential false alarms/h ≤ block's", c.name),
                pass: s <= b,
                detail: format!("sequential {s:.3}/h, block {b:.3}/h"),
            });
        }
        if matches!(c.kind, Kind::Drop { .. }) {
            // A focal drop (one cortical trace) must not be called systemic.
            for d in DETECTORS {
                let Some(r) = find(rows, &c.name, d) else { continue };
                out.push(Check {
                    what: format!("{}: no {d} alarm after the onset tagged systemic (focal)", c.name),
                    pass: r.systemic_after_onset == 0,
                    detail: format!(
                        "{} of {} clinical alarms systemic",
                        r.systemic_after_onset, r.alarms_after_onset
                    ),
                });
            }
        }
        if c.kind == Kind::Drift {
            for d in DETECTORS {
                let Some(r) = find(rows, &c.name, d) else { continue };
                out.push(Check {
                    what: format!("{}: every {d} alarm after the onset tagged systemic", c.name),
                    pass: r.systemic_after_onset == r.alarms_after_onset,
                    detail: format!(
                        "{} of {} clinical alarms systemic",
                        r.systemic_after_onset, r.alarms_after_onset
                    ),
                });
            }
        }
    }
    // No change missed by the sequential detector that the block detector caught (run by run).
    let mut missed = Vec::new();
    for r in runs {
        let (Some(b), Some(s)) = (r.detectors.get("block"), r.detectors.get("sequential")) else {
            continue;
        };
        for (cb, cs) in b.score.changes.iter().zip(&s.score.changes) {
            if cb.detected && !cs.detected {
                missed.push(format!("{} seed {}", r.case, r.seed));
            }
        }
    }
    out.push(Check {
        what: "no change missed by sequential that block caught".into(),
        pass: missed.is_empty(),
        detail: if missed.is_empty() {
            "none".into()
        } else {
            missed.join(", ")
        },
    });
    out
}

fn fmt(x: Option<f64>, prec: usize) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{v:.prec$}"))
}

fn write_text(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "ionm bench --suite{}: {} runs, {:.0} s of signal in {:.0} s wall ({})",
        if r.quick { " --quick" } else { "" },
        r.runs.len(),
        r.runs.iter().map(|x| x.simulated_s).sum::<f64>(),
        r.wall_s,
        r.host_cpu
    )?;
    writeln!(out, "sequential detector: {}", r.sequential)?;
    for d in DETECTORS {
        writeln!(out)?;
        writeln!(out, "detector: {d}")?;
        writeln!(
            out,
            "| scenario | runs | detected | sensitivity | median delay s (sweeps) | median delay, misses = ∞, s | worst delay s (sweeps) | false alarms/h | first alarm labelled | alarms after onset (systemic) | Lorden bound s (sweeps) |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|")?;
        for row in r.rows.iter().filter(|x| x.detector == d) {
            let s = &row.summary;
            writeln!(
                out,
                "| {} | {} | {}/{} | {} | {} ({}) | {} | {} ({}) | {} | {} | {} ({}) | {} |",
                row.case,
                s.runs,
                s.detected,
                s.changes,
                fmt(s.sensitivity, 2),
                fmt(s.median_delay_s, 1),
                fmt(s.median_delay_sweeps, 0),
                if s.changes == 0 {
                    "-".to_owned()
                } else {
                    fmt(row.median_delay_all_s, 1).replace('-', "∞")
                },
                fmt(s.worst_delay_s, 1),
                s.worst_delay_sweeps.map_or("-".into(), |v| v.to_string()),
                fmt(s.false_per_h, 3),
                if row.labelled_latency + row.labelled_amplitude == 0 {
                    "-".to_owned()
                } else {
                    format!("lat {} / amp {}", row.labelled_latency, row.labelled_amplitude)
                },
                row.alarms_after_onset,
                row.systemic_after_onset,
                match (row.lorden_s, row.lorden_sweeps) {
                    (Some(a), Some(b)) => format!("{a:.1} ({b:.0})"),
                    _ => "-".into(),
                }
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "acceptance (issue 8):")?;
    for c in &r.checks {
        writeln!(
            out,
            "  [{}] {} — {}",
            if c.pass { "PASS" } else { "FAIL" },
            c.what,
            c.detail
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ramp bound against its closed forms: a zero ramp is the step's `log(ARL)/KL`; when the divergence of
    /// the whole ramp falls short, the rest comes at the full rate; within the ramp, `KL·n³/(3R²)` reaches
    /// `log(ARL)` at `n`; and against a direct sum of the per-sweep divergence `KL·(i/R)²`.
    #[test]
    fn ramp_bound_matches_its_closed_forms_and_a_direct_sum() {
        let (kl, log_arl) = (0.05, 14.0);
        assert!((ramp_delay(kl, 0.0, log_arl) - 280.0).abs() < 1e-9);
        // Whole ramp of 600 sweeps: 0.05·600/3 = 10 < 14, then 4/0.05 = 80 more.
        assert!((ramp_delay(kl, 600.0, log_arl) - 680.0).abs() < 1e-9);
        for ramp in [600.0, 1200.0, 5000.0] {
            let (mut acc, mut n) = (0.0, 0u32);
            while acc < log_arl {
                n += 1;
                acc += kl * (f64::from(n) / ramp).min(1.0).powi(2);
            }
            assert!(
                (ramp_delay(kl, ramp, log_arl) - f64::from(n)).abs() <= 1.0,
                "ramp {ramp}: {} vs {n}",
                ramp_delay(kl, ramp, log_arl)
            );
        }
    }

    /// The suite's protocol fits its 8-channel simulated device with both detectors on, and every case is a
    /// valid scenario whose change (if any) starts after the detectors' learning and ends before the run does.
    #[test]
    fn protocol_and_cases_fit_the_device() {
        let p = protocol().unwrap();
        assert!(p.detectors.block && p.detectors.sequential);
        let sim = Simulator::new(SimConfig {
            channels: 8,
            sample_rate_hz: 10_000,
            seed: 1,
            mains_hz: 50.0,
            scenario: Scenario::default(),
        })
        .unwrap();
        let engine = ionm_dsp::Engine::new(&p, &sim.device_info()).unwrap();
        assert_eq!(engine.trace_count(), 12);
        // Learning: template + calibration sweeps at 4.7 Hz must end before the onset.
        let learn_s = f64::from(p.detectors.template_sweeps + p.detectors.calibration_sweeps) / 4.7;
        assert!(learn_s < ONSET_S, "{learn_s}");
        for quick in [true, false] {
            let cs = cases(quick, 3);
            assert_eq!(cs.len(), 15);
            for c in &cs {
                let d = c.scenario.duration_s.unwrap();
                for e in &c.scenario.events {
                    assert!(e.at_s < d, "{}", c.name);
                }
                assert!(!c.seeds.is_empty());
            }
        }
    }
}
