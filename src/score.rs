//! `ionm score`: an events file (`--events` of a run) against the simulator's ground truth (`firmware-sim
//! --truth`, same scenario, seed and duration).
//!
//! Definitions (all in stream time; the simulator's sample index 0 is the stream's time 0):
//!
//! - A **true change** is a truth event of kind `response` or `anaesthesia` with a non-zero amplitude or
//!   latency change. It affects the (device channel label, stimulator) pairs of its `channels` that have a
//!   response in the truth, restricted to its `stimulator` when it names one.
//! - An alarm's `trace` (a protocol trace name, e.g. `Cz (P37) (left_tibial)`) is mapped to its (label,
//!   stimulator) pair through the `average` events of the same file, which carry `channel` and `stimulator`.
//! - A change is **detected** when a clinical alarm is raised on one of its pairs at or after its onset; the
//!   **delay** is from the onset to the first such alarm, in seconds and in sweeps (stimuli of that pair's
//!   stimulator delivered from the onset up to the alarm's time, from `truth.stimuli`).
//! - A **false alarm** is a clinical alarm raised on a pair that no change has affected yet: an unchanged trace,
//!   or a changed trace before the onset of its first change. The **exposure** is, per trace, the time from its
//!   first baseline (no clinical alarm can come before) to the end of the run or the onset of its first change;
//!   false alarms per hour are given per hour of trace exposure and per hour of run.
//! - Technical alarms are counted separately (raised, per kind, per hour of run).
//!
//! With `--detector NAME` only the clinical alarms of that detector (`block`, `sequential`) count. Several
//! `--events`/`--truth` pairs (in the same order) are scored one by one and then pooled.

use anyhow::{Context, Result, bail};
use firmware_sim::Truth;
use ionm_core::Stimulator;
use ionm_core::events::{AlarmClass, AlarmState, Event};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Options of `ionm score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// The JSON Lines events file of a run (`--events` of `ionm demo`); repeat for several runs.
    #[arg(long, required = true)]
    pub events: Vec<PathBuf>,
    /// The simulator's ground truth of the same run (`firmware-sim --truth`); one per `--events`, same order.
    #[arg(long, required = true)]
    pub truth: Vec<PathBuf>,
    /// Count only the clinical alarms of this detector (`block`, `sequential`).
    #[arg(long)]
    pub detector: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ionm score`.
pub fn run(args: &ScoreArgs) -> Result<()> {
    if args.events.len() != args.truth.len() {
        bail!(
            "{} --events file(s) but {} --truth file(s): give one truth per events file",
            args.events.len(),
            args.truth.len()
        );
    }
    let mut runs = Vec::new();
    for (e, t) in args.events.iter().zip(&args.truth) {
        let events = read_events(e)?;
        let truth = read_truth(t)?;
        let mut s = score(&events, &truth, args.detector.as_deref());
        s.events_file = e.display().to_string();
        runs.push(s);
    }
    let summary = Summary::of(&runs);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(
            &mut out,
            &Report {
                runs: &runs,
                summary: &summary,
            },
        )?;
        writeln!(out)?;
    } else {
        for r in &runs {
            write_run(&mut out, r)?;
        }
        if runs.len() > 1 {
            write_summary(&mut out, &summary)?;
        }
    }
    Ok(())
}

/// Reads a JSON Lines events file. Lines of an unknown `type` (a newer schema) are skipped; anything else that
/// does not parse is an error naming the line.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    parse_events(std::io::BufReader::new(f)).with_context(|| format!("in {}", path.display()))
}

const KNOWN_TYPES: [&str; 10] = [
    "device",
    "link",
    "gap",
    "status",
    "average",
    "baseline",
    "alarm",
    "marker",
    "correction",
    "stats",
];

fn parse_events(r: impl BufRead) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.with_context(|| format!("line {}: cannot read", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Event>(&line) {
            Ok(e) => out.push(e),
            Err(err) => {
                let v: serde_json::Value =
                    serde_json::from_str(&line).with_context(|| format!("line {}: not JSON", i + 1))?;
                let ty = v.get("type").and_then(|t| t.as_str());
                if ty.is_some_and(|t| !KNOWN_TYPES.contains(&t)) {
                    continue;
                }
                bail!("line {}: not an ionm event ({err})", i + 1);
            }
        }
    }
    Ok(out)
}

/// Reads a simulator ground truth.
pub fn read_truth(path: &Path) -> Result<Truth> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    serde_json::from_reader(std::io::BufReader::new(f))
        .with_context(|| format!("{} is not a firmware-sim ground truth", path.display()))
}

/// A (device channel label, stimulator) pair.
type Pair = (String, Stimulator);

/// The outcome for one affected trace of a true change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PairOutcome {
    /// Device channel label.
    pub channel: String,
    /// Stimulator.
    pub stimulator: Stimulator,
    /// Protocol trace names on this pair (from the average events; empty when the protocol does not record it).
    pub traces: Vec<String>,
    /// Time of the first clinical alarm at or after the onset, s.
    pub alarm_s: Option<f64>,
    /// Delay after the onset, s.
    pub delay_s: Option<f64>,
    /// Stimuli of this stimulator from the onset up to the alarm.
    pub delay_sweeps: Option<u64>,
}

/// One true change and how it was detected.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChangeOutcome {
    /// Truth event kind (`response`, `anaesthesia`).
    pub kind: String,
    /// Onset, s.
    pub onset_s: f64,
    /// Ramp, s.
    pub ramp_s: Option<f64>,
    /// Stimulator named by the event, if any.
    pub stimulator: Option<Stimulator>,
    /// Amplitude change, %.
    pub amplitude_pct: Option<f64>,
    /// Latency change, %.
    pub latency_pct: Option<f64>,
    /// Latency change, ms.
    pub latency_ms: Option<f64>,
    /// Detected on at least one affected trace.
    pub detected: bool,
    /// Earliest delay over the affected traces, s.
    pub delay_s: Option<f64>,
    /// Delay of that earliest detection, in sweeps of its stimulator.
    pub delay_sweeps: Option<u64>,
    /// Per affected trace.
    pub pairs: Vec<PairOutcome>,
}

/// A false clinical alarm.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FalseAlarm {
    /// Time, s.
    pub stream_s: f64,
    /// Alarm trace name.
    pub trace: Option<String>,
    /// Kind (`amplitude_drop`…).
    pub kind: String,
    /// Detector.
    pub detector: String,
}

/// The score of one run.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct RunScore {
    /// The events file.
    pub events_file: String,
    /// Scenario name.
    pub scenario: String,
    /// Simulator seed.
    pub seed: u64,
    /// Length of the run, s (last event time, at least the truth's generated samples).
    pub duration_s: f64,
    /// True changes.
    pub changes: Vec<ChangeOutcome>,
    /// Clinical alarms raised on a trace affected by a change, at or after its onset.
    pub true_alarms: u64,
    /// False clinical alarms.
    pub false_alarms: Vec<FalseAlarm>,
    /// Trace exposure (unchanged traces and stable periods, from each trace's first baseline), hours.
    pub exposure_trace_h: f64,
    /// False alarms per hour of trace exposure.
    pub false_per_trace_h: Option<f64>,
    /// False alarms per hour of run.
    pub false_per_h: Option<f64>,
    /// Technical alarms raised, by kind.
    pub technical: BTreeMap<String, u64>,
    /// Technical alarms raised per hour of run.
    pub technical_per_h: Option<f64>,
}

fn kind_name<T: Serialize>(k: &T) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Scores one run. `detector`: only that detector's clinical alarms count.
pub fn score(events: &[Event], truth: &Truth, detector: Option<&str>) -> RunScore {
    let fs = f64::from(truth.sample_rate_hz.max(1));
    // Trace name → pair, and first baseline per trace.
    let mut trace_pair: HashMap<&str, Pair> = HashMap::new();
    let mut first_baseline: HashMap<&str, f64> = HashMap::new();
    let mut end_s = truth.samples_generated as f64 / fs;
    for e in events {
        end_s = end_s.max(e.stream_s());
        match e {
            Event::Average(a) => {
                trace_pair
                    .entry(a.trace.as_str())
                    .or_insert_with(|| (a.channel.clone(), a.stimulator));
            }
            Event::Baseline(b) => {
                first_baseline.entry(b.trace.as_str()).or_insert(b.stream_s);
            }
            _ => {}
        }
    }
    // True changes and the onset of the first change per pair.
    let mut changes = Vec::new();
    let mut first_change: HashMap<Pair, f64> = HashMap::new();
    for ev in &truth.events {
        let nonzero = |x: Option<f64>| x.is_some_and(|v| v != 0.0);
        if !matches!(ev.kind.as_str(), "response" | "anaesthesia")
            || !(nonzero(ev.amplitude_pct) || nonzero(ev.latency_pct) || nonzero(ev.latency_ms))
        {
            continue;
        }
        let mut pairs: Vec<Pair> = truth
            .responses
            .iter()
            .filter(|r| ev.channels.contains(&r.label) && ev.stimulator.is_none_or(|s| s == r.stimulator))
            .map(|r| (r.label.clone(), r.stimulator))
            .collect();
        pairs.dedup();
        for p in &pairs {
            let o = first_change.entry(p.clone()).or_insert(ev.onset_s);
            *o = o.min(ev.onset_s);
        }
        changes.push((ev, pairs));
    }
    let stimuli_between = |stim: Stimulator, from: u64, to_s: f64| -> u64 {
        let to = (to_s * fs).round() as u64;
        let s = &truth.stimuli;
        s.sample_index
            .iter()
            .zip(&s.stimulator)
            .filter(|&(&i, &st)| st == stim && i >= from && i <= to)
            .count() as u64
    };
    // Clinical alarms raised (of the chosen detector), with their pair.
    let mut raised: Vec<(f64, Option<&str>, Option<Pair>, &ionm_core::events::AlarmEvent)> = Vec::new();
    let mut technical: BTreeMap<String, u64> = BTreeMap::new();
    for e in events {
        let Event::Alarm(a) = e else { continue };
        if a.state != AlarmState::Raised {
            continue;
        }
        if a.class == AlarmClass::Technical {
            *technical.entry(kind_name(&a.kind)).or_default() += 1;
            continue;
        }
        if detector.is_some_and(|d| d != a.detector) {
            continue;
        }
        let pair = a.trace.as_deref().and_then(|t| trace_pair.get(t).cloned());
        raised.push((a.stream_s, a.trace.as_deref(), pair, a));
    }
    let mut score = RunScore {
        scenario: truth.scenario.name.clone(),
        seed: truth.seed,
        duration_s: end_s,
        ..Default::default()
    };
    for (ev, pairs) in changes {
        let mut outcomes: Vec<PairOutcome> = pairs
            .iter()
            .map(|p| {
                let alarm_s = raised
                    .iter()
                    .filter(|(t, _, q, _)| *t >= ev.onset_s && q.as_ref() == Some(p))
                    .map(|(t, ..)| *t)
                    .reduce(f64::min);
                let mut traces: Vec<String> = trace_pair
                    .iter()
                    .filter(|(_, q)| *q == p)
                    .map(|(t, _)| (*t).to_owned())
                    .collect();
                traces.sort();
                PairOutcome {
                    channel: p.0.clone(),
                    stimulator: p.1,
                    traces,
                    alarm_s,
                    delay_s: alarm_s.map(|t| t - ev.onset_s),
                    delay_sweeps: alarm_s.map(|t| stimuli_between(p.1, ev.onset_index, t)),
                }
            })
            .collect();
        outcomes.sort_by(|a, b| {
            (&a.channel, kind_name(&a.stimulator)).cmp(&(&b.channel, kind_name(&b.stimulator)))
        });
        let best = outcomes.iter().filter(|o| o.delay_s.is_some()).min_by(|a, b| {
            a.delay_s
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.delay_s.unwrap_or(f64::INFINITY))
        });
        score.changes.push(ChangeOutcome {
            kind: ev.kind.clone(),
            onset_s: ev.onset_s,
            ramp_s: ev.ramp_s,
            stimulator: ev.stimulator,
            amplitude_pct: ev.amplitude_pct,
            latency_pct: ev.latency_pct,
            latency_ms: ev.latency_ms,
            detected: best.is_some(),
            delay_s: best.and_then(|b| b.delay_s),
            delay_sweeps: best.and_then(|b| b.delay_sweeps),
            pairs: outcomes,
        });
    }
    // False alarms: on a pair with no change yet (unmapped traces count as unchanged).
    for (t, trace, pair, a) in &raised {
        let changed = pair
            .as_ref()
            .and_then(|p| first_change.get(p))
            .is_some_and(|&on| *t >= on);
        if changed {
            score.true_alarms += 1;
        } else {
            score.false_alarms.push(FalseAlarm {
                stream_s: *t,
                trace: trace.map(str::to_owned),
                kind: kind_name(&a.kind),
                detector: a.detector.clone(),
            });
        }
    }
    // Exposure: per trace with a baseline, from it to the end or the first change of its pair.
    let exposure_s: f64 = first_baseline
        .iter()
        .map(|(trace, &b)| {
            let stop = trace_pair
                .get(trace)
                .and_then(|p| first_change.get(p))
                .map_or(end_s, |&on| on.min(end_s));
            (stop - b).max(0.0)
        })
        .sum();
    score.exposure_trace_h = exposure_s / 3600.0;
    let nfa = score.false_alarms.len() as f64;
    let per = |n: f64, h: f64| (h > 0.0).then(|| n / h);
    score.false_per_trace_h = per(nfa, score.exposure_trace_h);
    score.false_per_h = per(nfa, end_s / 3600.0);
    score.technical_per_h = per(technical.values().sum::<u64>() as f64, end_s / 3600.0);
    score.technical = technical;
    score
}

/// Pooled over runs.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Summary {
    /// Runs.
    pub runs: usize,
    /// True changes.
    pub changes: usize,
    /// Of which detected.
    pub detected: usize,
    /// detected / changes.
    pub sensitivity: Option<f64>,
    /// Median delay of the detected changes, s.
    pub median_delay_s: Option<f64>,
    /// Worst delay of the detected changes, s.
    pub worst_delay_s: Option<f64>,
    /// Median delay in sweeps.
    pub median_delay_sweeps: Option<f64>,
    /// Worst delay in sweeps.
    pub worst_delay_sweeps: Option<u64>,
    /// False clinical alarms.
    pub false_alarms: usize,
    /// Per hour of trace exposure.
    pub false_per_trace_h: Option<f64>,
    /// Per hour of run.
    pub false_per_h: Option<f64>,
    /// Technical alarms per hour of run.
    pub technical_per_h: Option<f64>,
}

/// The median (mean of the two middle values for an even count); `None` when empty. Sorts `v`.
pub(crate) fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

impl Summary {
    /// Pools runs.
    pub fn of(runs: &[RunScore]) -> Self {
        let changes: Vec<&ChangeOutcome> = runs.iter().flat_map(|r| &r.changes).collect();
        let mut delays: Vec<f64> = changes.iter().filter_map(|c| c.delay_s).collect();
        let mut sweeps: Vec<f64> = changes
            .iter()
            .filter_map(|c| c.delay_sweeps)
            .map(|s| s as f64)
            .collect();
        let detected = changes.iter().filter(|c| c.detected).count();
        let false_alarms: usize = runs.iter().map(|r| r.false_alarms.len()).sum();
        let exposure: f64 = runs.iter().map(|r| r.exposure_trace_h).sum();
        let hours: f64 = runs.iter().map(|r| r.duration_s).sum::<f64>() / 3600.0;
        let technical: u64 = runs.iter().flat_map(|r| r.technical.values()).sum();
        let per = |n: f64, h: f64| (h > 0.0).then(|| n / h);
        Self {
            runs: runs.len(),
            changes: changes.len(),
            detected,
            sensitivity: (!changes.is_empty()).then(|| detected as f64 / changes.len() as f64),
            worst_delay_s: delays.iter().copied().reduce(f64::max),
            median_delay_s: median(&mut delays),
            worst_delay_sweeps: changes.iter().filter_map(|c| c.delay_sweeps).max(),
            median_delay_sweeps: median(&mut sweeps),
            false_alarms,
            false_per_trace_h: per(false_alarms as f64, exposure),
            false_per_h: per(false_alarms as f64, hours),
            technical_per_h: per(technical as f64, hours),
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    runs: &'a [RunScore],
    summary: &'a Summary,
}

fn opt(x: Option<f64>, prec: usize) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{v:.prec$}"))
}

fn write_run(out: &mut impl Write, r: &RunScore) -> Result<()> {
    writeln!(
        out,
        "{} (scenario {}, seed {}, {:.0} s)",
        r.events_file, r.scenario, r.seed, r.duration_s
    )?;
    if r.changes.is_empty() {
        writeln!(out, "  no true change in this scenario")?;
    }
    for c in &r.changes {
        let what = [
            c.amplitude_pct
                .filter(|v| *v != 0.0)
                .map(|v| format!("amplitude {v:+.0}%")),
            c.latency_pct
                .filter(|v| *v != 0.0)
                .map(|v| format!("latency {v:+.0}%")),
            c.latency_ms
                .filter(|v| *v != 0.0)
                .map(|v| format!("latency {v:+.2} ms")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        writeln!(
            out,
            "  change at {:.1} s ({}, {what}, ramp {} s): {}",
            c.onset_s,
            c.kind,
            opt(c.ramp_s, 0),
            if c.detected {
                format!(
                    "DETECTED after {} s / {} sweeps",
                    opt(c.delay_s, 1),
                    c.delay_sweeps.map_or_else(|| "-".to_owned(), |s| s.to_string())
                )
            } else {
                "MISSED".to_owned()
            }
        )?;
        for p in &c.pairs {
            let traces = if p.traces.is_empty() {
                "(not in protocol)".to_owned()
            } else {
                p.traces.join(", ")
            };
            writeln!(
                out,
                "    {:<10} {:<13} {:<32} {}",
                p.channel,
                kind_name(&p.stimulator),
                traces,
                match (p.delay_s, p.delay_sweeps) {
                    (Some(d), Some(s)) => format!("alarm after {d:.1} s / {s} sweeps"),
                    _ => "no alarm".to_owned(),
                }
            )?;
        }
    }
    writeln!(
        out,
        "  clinical alarms: {} true, {} false ({} per trace-hour over {:.2} trace-h; {} per hour of run)",
        r.true_alarms,
        r.false_alarms.len(),
        opt(r.false_per_trace_h, 2),
        r.exposure_trace_h,
        opt(r.false_per_h, 2)
    )?;
    for f in &r.false_alarms {
        writeln!(
            out,
            "    false: {:.1} s {} on {} ({})",
            f.stream_s,
            f.kind,
            f.trace.as_deref().unwrap_or("device"),
            f.detector
        )?;
    }
    let tech: Vec<String> = r.technical.iter().map(|(k, n)| format!("{k} {n}")).collect();
    writeln!(
        out,
        "  technical alarms: {} ({} per hour){}",
        r.technical.values().sum::<u64>(),
        opt(r.technical_per_h, 1),
        if tech.is_empty() {
            String::new()
        } else {
            format!(": {}", tech.join(", "))
        }
    )?;
    Ok(())
}

fn write_summary(out: &mut impl Write, s: &Summary) -> Result<()> {
    writeln!(
        out,
        "pooled over {} runs: {}/{} changes detected (sensitivity {}), delay median {} s / {} sweeps, worst {} s / {} \
         sweeps; {} false clinical alarms ({} per trace-hour, {} per hour of run); technical {} per hour",
        s.runs,
        s.detected,
        s.changes,
        opt(s.sensitivity, 2),
        opt(s.median_delay_s, 1),
        opt(s.median_delay_sweeps, 0),
        opt(s.worst_delay_s, 1),
        s.worst_delay_sweeps
            .map_or_else(|| "-".to_owned(), |v| v.to_string()),
        s.false_alarms,
        opt(s.false_per_trace_h, 2),
        opt(s.false_per_h, 2),
        opt(s.technical_per_h, 1)
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written truth: 10 kHz, one stimulator (left_tibial) every 0.25 s from 0.1 s, a 60% drop of Cz-Fpz
    /// to left_tibial at 100 s; Cz-Fpz also responds to right_tibial (unchanged).
    fn truth() -> Truth {
        let mut idx = Vec::new();
        let mut stim = Vec::new();
        for k in 0..800u64 {
            idx.push(1000 + 2500 * k);
            stim.push(if k % 2 == 0 { "left_tibial" } else { "right_tibial" });
        }
        let t = serde_json::json!({
            "generator": "test", "seed": 7, "sample_rate_hz": 10000, "mains_hz": 50.0, "gain_nv_per_lsb": 24,
            "scenario": {"name": "hand", "description": "", "duration_s": 200.0},
            "samples_generated": 2_000_000u64,
            "channels": [],
            "stimuli": {"sample_index": idx, "stimulator": stim},
            "responses": [
                {"channel": 7, "label": "Cz-Fpz", "stimulator": "left_tibial", "kind": "evoked",
                 "amplitude_measure": "", "latency_measure": "", "baseline_latency_ms": 37.0,
                 "baseline_amplitude_uv": 1.5, "peaks": [], "sweeps": {"onset": [], "amplitude_uv": [], "latency_ms": []}},
                {"channel": 7, "label": "Cz-Fpz", "stimulator": "right_tibial", "kind": "evoked",
                 "amplitude_measure": "", "latency_measure": "", "baseline_latency_ms": 37.0,
                 "baseline_amplitude_uv": 1.5, "peaks": [], "sweeps": {"onset": [], "amplitude_uv": [], "latency_ms": []}}
            ],
            "events": [
                {"kind": "response", "onset_s": 100.0, "onset_index": 1_000_000u64, "ramp_s": 0.0,
                 "amplitude_pct": -60.0, "latency_pct": 0.0, "latency_ms": 0.0, "stimulator": "left_tibial",
                 "channels": ["Cz-Fpz"]},
                {"kind": "pop", "onset_s": 50.0, "onset_index": 500_000u64, "step_uv": 100.0, "tau_s": 0.5,
                 "channels": ["Cz-Fpz"]}
            ]
        });
        serde_json::from_value(t).expect("valid truth")
    }

    fn avg(t: f64, trace: &str, stim: &str) -> String {
        format!(
            r#"{{"v":1,"type":"average","stream_s":{t},"trace":"{trace}","channel":"Cz-Fpz","stimulator":"{stim}","modality":"ssep-lower","sequence":0,"sweeps":300,"rejected":0,"dropped":0,"peaks":[],"amplitude_uv":1.5,"latency_ms":37.0,"amplitude_ratio":null,"latency_ratio":null,"fsp":3.0,"residual_noise_uv":0.1}}"#
        )
    }

    fn alarm(t: f64, trace: &str, class: &str, kind: &str, detector: &str) -> String {
        format!(
            r#"{{"v":1,"type":"alarm","stream_s":{t},"id":1,"trace":"{trace}","kind":"{kind}","class":"{class}","state":"raised","value":0.4,"threshold":0.5,"systemic":false,"detector":"{detector}","message":""}}"#
        )
    }

    fn baseline(t: f64, trace: &str) -> String {
        format!(
            r#"{{"v":1,"type":"baseline","stream_s":{t},"trace":"{trace}","number":1,"origin":"automatic","sweeps":300,"amplitude_uv":1.5,"latency_ms":37.0,"fsp":3.0,"residual_noise_uv":0.1,"replaces_s":null}}"#
        )
    }

    fn events(lines: &[String]) -> Vec<Event> {
        parse_events(lines.join("\n").as_bytes()).expect("valid events")
    }

    const L: &str = "Cz (P37) (left_tibial)";
    const R: &str = "Cz (P37) (right_tibial)";

    #[test]
    fn detection_delay_and_false_alarms() {
        let ev = events(&[
            avg(10.0, L, "left_tibial"),
            avg(10.0, R, "right_tibial"),
            baseline(20.0, L),
            baseline(20.0, R),
            // Before the onset on the changed trace: false.
            alarm(60.0, L, "clinical", "amplitude_drop", "block"),
            // Technical: counted apart.
            alarm(50.0, "Cz-Fpz", "technical", "saturation", "technical"),
            // On the unchanged trace after the onset: false (wrong channel).
            alarm(105.0, R, "clinical", "amplitude_drop", "block"),
            // The detection: 30 s after onset.
            alarm(130.0, L, "clinical", "amplitude_drop", "block"),
            alarm(131.0, L, "clinical", "change_detected", "sequential"),
        ]);
        let s = score(&ev, &truth(), Some("block"));
        assert_eq!(s.changes.len(), 1, "the pop is not a clinical change");
        let c = &s.changes[0];
        assert!(c.detected);
        assert_eq!(c.pairs.len(), 1, "only the named stimulator is affected");
        assert!((c.delay_s.unwrap() - 30.0).abs() < 1e-9);
        // left_tibial stimuli at 0.1 + 0.5 j s; those in [100, 130] s: j = 200 (100.1 s) … 259 (129.6 s) → 60.
        assert_eq!(c.delay_sweeps, Some(60));
        assert_eq!(s.true_alarms, 1);
        assert_eq!(s.false_alarms.len(), 2);
        assert_eq!(s.technical.get("saturation"), Some(&1));
        // Exposure: L from 20 to 100 s, R from 20 to 200 s = 260 s.
        assert!((s.exposure_trace_h - 260.0 / 3600.0).abs() < 1e-12);
        assert!((s.false_per_h.unwrap() - 2.0 / (200.0 / 3600.0)).abs() < 1e-9);
        // The sequential detector alone: detected 31 s after onset, no false alarm.
        let q = score(&ev, &truth(), Some("sequential"));
        assert!((q.changes[0].delay_s.unwrap() - 31.0).abs() < 1e-9);
        assert!(q.false_alarms.is_empty());
        // Both detectors: the earliest alarm counts.
        let both = score(&ev, &truth(), None);
        assert!((both.changes[0].delay_s.unwrap() - 30.0).abs() < 1e-9);
        assert_eq!(both.true_alarms, 2);
    }

    #[test]
    fn missed_change_and_summary() {
        let ev = events(&[avg(10.0, L, "left_tibial"), baseline(20.0, L)]);
        let s = score(&ev, &truth(), None);
        assert!(!s.changes[0].detected);
        assert_eq!(s.changes[0].delay_s, None);
        let sum = Summary::of(&[s.clone(), s]);
        assert_eq!((sum.changes, sum.detected), (2, 0));
        assert_eq!(sum.sensitivity, Some(0.0));
        assert_eq!(sum.median_delay_s, None);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn bad_lines_are_errors_and_unknown_types_skipped() {
        let ok = parse_events(&b"{\"v\":1,\"type\":\"future_thing\",\"stream_s\":1.0}\n\n"[..]).unwrap();
        assert!(ok.is_empty());
        let err = parse_events(&b"{\"v\":1,\"type\":\"alarm\",\"stream_s\":1.0}\n"[..]).unwrap_err();
        assert!(format!("{err}").contains("line 1"), "{err}");
        let err = parse_events(&b"\nnot json\n"[..]).unwrap_err();
        assert!(format!("{err}").contains("line 2"), "{err}");
    }
}
