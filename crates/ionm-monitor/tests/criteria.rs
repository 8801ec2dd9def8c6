//! The monitor's decisions on scripted sequences of averages. Expected outcomes follow from the criteria as
//! written (GUIDE §1), not from running the code.

use ionm_core::events::{AlarmClass, AlarmKind, AlarmState, BaselineOrigin, Event};
use ionm_core::{DeviceStatus, LinkEvent, Stimulator};
use ionm_monitor::{AverageInput, BaselineMeasure, Criteria, Monitor, Role, TraceMeta};

fn meta(name: &str, ch: usize, role: Role, criteria: Criteria) -> TraceMeta {
    TraceMeta {
        name: name.into(),
        label: format!("ch{ch}"),
        device_channel: ch,
        stimulator: Stimulator::LeftTibial,
        modality: "ssep-lower".into(),
        role,
        criteria,
    }
}

fn avg(trace: usize, t: f64, amp: f64, lat: f64) -> AverageInput {
    AverageInput {
        trace,
        stream_s: t,
        sweeps: 200,
        amplitude_uv: Some(amp),
        latency_ms: Some(lat),
        fsp: Some(8.0),
        residual_noise_uv: Some(0.1),
    }
}

/// Feeds four identical good averages: enough for any preset's replicated baseline (SSEP/BAEP 2, MEP 4).
fn settle(m: &mut Monitor, trace: usize, amp: f64, lat: f64, noise: f64, out: &mut Vec<Event>) {
    for k in 0..4 {
        let a = AverageInput {
            residual_noise_uv: Some(noise),
            ..avg(trace, -4.0 + k as f64, amp, lat)
        };
        m.on_average(&a, || None, out);
    }
}

fn alarms(ev: &[Event]) -> Vec<(AlarmKind, AlarmState)> {
    ev.iter()
        .filter_map(|e| {
            if let Event::Alarm(a) = e {
                Some((a.kind, a.state))
            } else {
                None
            }
        })
        .collect()
}

fn one_trace() -> Monitor {
    Monitor::new(
        vec![meta("Cz L", 0, Role::Cortical, Criteria::ssep())],
        vec!["ch0".into()],
    )
}

#[test]
fn first_good_average_becomes_the_baseline_and_a_bad_one_does_not() {
    let mut m = one_trace();
    let mut out = Vec::new();
    // Fsp below 3.1 and amplitude only 3.3× the residual noise: no response demonstrated, no baseline.
    let mut a = avg(0, 10.0, 1.0, 37.0);
    a.fsp = Some(2.0);
    a.residual_noise_uv = Some(0.3);
    let r = m.on_average(&a, || None, &mut out);
    assert!(!r.baseline_taken && out.is_empty());
    assert_eq!(r.suspended.as_deref(), Some("no baseline yet"));
    // Fsp low but amplitude 10× the residual noise: a clear response (small late SSEPs on slow EEG).
    let mut a = avg(0, 20.0, 1.0, 37.0);
    a.fsp = Some(2.0);
    let r = m.on_average(&a, || None, &mut out);
    assert!(
        !r.baseline_taken,
        "one good average is not yet a replicated baseline"
    );
    let r = m.on_average(&avg(0, 30.0, 1.2, 38.0), || None, &mut out);
    assert!(!r.baseline_taken, "nor are two: the SSEP preset replicates three");
    let r = m.on_average(&avg(0, 40.0, 0.8, 36.0), || None, &mut out);
    assert!(r.baseline_taken);
    // The baseline is the mean of the three passing averages (1.0, 1.2, 0.8 µV; 37, 38, 36 ms).
    assert!(matches!(&out[0], Event::Baseline(b)
        if (b.amplitude_uv.unwrap() - 1.0).abs() < 1e-12 && b.latency_ms == Some(37.0)));
}

#[test]
fn a_baseline_measured_again_by_the_caller_is_the_one_compared_with() {
    let mut m = one_trace();
    let mut out = Vec::new();
    let mut given = Vec::new();
    for (k, amp) in [1.0, 1.2, 0.8].into_iter().enumerate() {
        let a = avg(0, 10.0 * (k + 1) as f64, amp, 37.0);
        let r = m.on_average_with(
            &a,
            |from| {
                given = from.iter().map(|x| x.stream_s).collect();
                BaselineMeasure {
                    amplitude_uv: Some(0.9),
                    latency_ms: Some(36.5),
                    ..BaselineMeasure::default()
                }
            },
            &mut out,
        );
        assert_eq!(r.baseline_taken, k == 2);
    }
    // Called once, with the three averages the baseline is made of, and its numbers are the baseline's.
    assert_eq!(given, vec![10.0, 20.0, 30.0]);
    assert!(
        matches!(&out[0], Event::Baseline(b) if b.amplitude_uv == Some(0.9) && b.latency_ms == Some(36.5))
    );
    let r = m.on_average(&avg(0, 40.0, 0.45, 36.5), || None, &mut out);
    assert_eq!(r.amplitude_ratio, Some(0.5));
    // A user's baseline is the one average they chose; what the caller could not measure again (None) is the
    // average's own number.
    m.request_baseline(Some(0));
    out.clear();
    m.on_average_with(
        &avg(0, 50.0, 0.7, 38.0),
        |from| {
            given = from.iter().map(|x| x.stream_s).collect();
            BaselineMeasure {
                latency_ms: Some(37.5),
                ..BaselineMeasure::default()
            }
        },
        &mut out,
    );
    assert_eq!(given, vec![50.0]);
    assert!(
        matches!(&out[0], Event::Baseline(b) if b.amplitude_uv == Some(0.7) && b.latency_ms == Some(37.5))
    );
}

#[test]
fn a_drop_to_40_percent_is_called_on_the_second_average_and_cleared_with_hysteresis() {
    let mut m = one_trace();
    let mut out = Vec::new();
    settle(&mut m, 0, 2.0, 37.0, 0.1, &mut out);
    out.clear();
    let r = m.on_average(&avg(0, 40.0, 0.8, 37.0), || None, &mut out);
    assert_eq!(r.amplitude_ratio, Some(0.4));
    assert!(alarms(&out).is_empty(), "one average is not confirmed");
    m.on_average(&avg(0, 80.0, 0.8, 37.0), || None, &mut out);
    assert_eq!(alarms(&out), vec![(AlarmKind::AmplitudeDrop, AlarmState::Raised)]);
    out.clear();
    // 0.55 is above the threshold but inside the hysteresis band (0.5 + 0.1): still active.
    m.on_average(&avg(0, 120.0, 1.1, 37.0), || None, &mut out);
    m.on_average(&avg(0, 160.0, 1.1, 37.0), || None, &mut out);
    assert!(alarms(&out).is_empty());
    m.on_average(&avg(0, 200.0, 1.6, 37.0), || None, &mut out);
    m.on_average(&avg(0, 240.0, 1.6, 37.0), || None, &mut out);
    assert_eq!(
        alarms(&out),
        vec![(AlarmKind::AmplitudeDrop, AlarmState::Cleared)]
    );
}

#[test]
fn a_12_percent_latency_increase_is_called_and_not_an_amplitude_drop() {
    let mut m = one_trace();
    let mut out = Vec::new();
    settle(&mut m, 0, 2.0, 40.0, 0.1, &mut out);
    out.clear();
    for t in 1..=2 {
        m.on_average(&avg(0, t as f64 * 40.0, 2.0, 44.8), || None, &mut out);
    }
    assert_eq!(
        alarms(&out),
        vec![(AlarmKind::LatencyIncrease, AlarmState::Raised)]
    );
}

#[test]
fn acknowledge_keeps_the_alarm_active_until_it_clears() {
    let mut m = one_trace();
    let mut out = Vec::new();
    settle(&mut m, 0, 2.0, 37.0, 0.1, &mut out);
    m.on_average(&avg(0, 1.0, 0.5, 37.0), || None, &mut out);
    m.on_average(&avg(0, 2.0, 0.5, 37.0), || None, &mut out);
    let id = out
        .iter()
        .find_map(|e| if let Event::Alarm(a) = e { Some(a.id) } else { None })
        .unwrap();
    out.clear();
    assert!(m.acknowledge(id, 3.0, &mut out));
    assert!(!m.acknowledge(id, 3.5, &mut out), "twice is a no-op");
    assert_eq!(
        alarms(&out),
        vec![(AlarmKind::AmplitudeDrop, AlarmState::Acknowledged)]
    );
    assert!(!m.acknowledge(999, 4.0, &mut out));
}

#[test]
fn rebaseline_on_command_keeps_both_baselines_in_the_stream() {
    let mut m = one_trace();
    let mut out = Vec::new();
    settle(&mut m, 0, 2.0, 37.0, 0.1, &mut out);
    m.request_baseline(None);
    let r = m.on_average(&avg(0, 60.0, 1.5, 38.0), || None, &mut out);
    assert!(r.baseline_taken);
    let b: Vec<_> = out
        .iter()
        .filter_map(|e| if let Event::Baseline(b) = e { Some(b) } else { None })
        .collect();
    assert_eq!(b.len(), 2);
    assert_eq!(
        (b[1].number, b[1].origin, b[1].replaces_s),
        (2, BaselineOrigin::User, Some(-2.0))
    );
    // Against the new baseline, 1.5 µV is 100%.
    let r = m.on_average(&avg(0, 100.0, 1.5, 38.0), || None, &mut out);
    assert_eq!(r.amplitude_ratio, Some(1.0));
}

#[test]
fn an_electrode_off_suspends_clinical_criteria_and_says_so() {
    let mut m = one_trace();
    let mut out = Vec::new();
    settle(&mut m, 0, 2.0, 37.0, 0.1, &mut out);
    out.clear();
    let status = DeviceStatus {
        impedance_high: 1,
        ..Default::default()
    };
    m.on_status(&status, 30.0, &mut out);
    let raised = alarms(&out);
    assert_eq!(raised, vec![(AlarmKind::ElectrodeOff, AlarmState::Raised)]);
    assert!(
        matches!(&out[0], Event::Alarm(a) if a.class == AlarmClass::Technical && a.message.contains("suspended"))
    );
    out.clear();
    for t in 1..=4 {
        let r = m.on_average(&avg(0, 30.0 + t as f64, 0.1, 37.0), || None, &mut out);
        assert!(r.suspended.as_deref().is_some_and(|s| s.contains("electrode")));
    }
    assert!(
        alarms(&out).is_empty(),
        "no clinical alarm while the electrode is off: {out:?}"
    );
    m.on_status(&DeviceStatus::default(), 40.0, &mut out);
    assert_eq!(alarms(&out), vec![(AlarmKind::ElectrodeOff, AlarmState::Cleared)]);
}

#[test]
fn many_rejected_sweeps_raise_noisy_and_flat_sweeps_an_electrode_alarm() {
    let mut m = Monitor::new(
        vec![
            meta("a", 0, Role::Cortical, Criteria::ssep()),
            meta("b", 1, Role::Cortical, Criteria::ssep()),
        ],
        vec!["ch0".into(), "ch1".into()],
    );
    let mut out = Vec::new();
    for i in 0..32 {
        m.on_sweep(
            0,
            if i % 3 == 0 { None } else { Some(false) },
            i as f64 * 0.2,
            &mut out,
        );
        m.on_sweep(1, Some(true), i as f64 * 0.2, &mut out);
    }
    let a = alarms(&out);
    assert!(a.contains(&(AlarmKind::Noisy, AlarmState::Raised)), "{a:?}");
    assert!(
        a.contains(&(AlarmKind::ElectrodeOff, AlarmState::Raised)),
        "{a:?}"
    );
    // The flat channel's trace also counts as noisy (every sweep rejected): 3 alarms in all, none clinical.
    assert!(
        out.iter()
            .all(|e| matches!(e, Event::Alarm(a) if a.class == AlarmClass::Technical))
    );
}

#[test]
fn signal_lost_is_raised_and_cleared_by_the_link() {
    let mut m = one_trace();
    let mut out = Vec::new();
    m.on_link(&LinkEvent::SignalLost { silent_ms: 500 }, 5.0, &mut out);
    m.on_link(&LinkEvent::SignalRestored { silent_ms: 900 }, 5.0, &mut out);
    assert_eq!(
        alarms(&out),
        vec![
            (AlarmKind::SignalLost, AlarmState::Raised),
            (AlarmKind::SignalLost, AlarmState::Cleared)
        ]
    );
}

#[test]
fn a_global_cortical_depression_with_intact_periphery_is_systemic() {
    let mut m = Monitor::new(
        vec![
            meta("Cz L", 0, Role::Cortical, Criteria::ssep()),
            meta("Cz R", 0, Role::Cortical, Criteria::ssep()),
            meta("PF L", 1, Role::Peripheral, Criteria::ssep()),
        ],
        vec!["Cz".into(), "PF".into()],
    );
    let mut out = Vec::new();
    for t in 0..3 {
        settle(&mut m, t, 2.0, 37.0, 0.1, &mut out);
    }
    out.clear();
    for k in 1..=2 {
        let s = k as f64 * 40.0;
        m.on_average(&avg(2, s, 2.0, 8.0), || None, &mut out);
        m.on_average(&avg(1, s, 0.9, 37.0), || None, &mut out);
        m.on_average(&avg(0, s, 0.9, 37.0), || None, &mut out);
    }
    let sys: Vec<bool> = out
        .iter()
        .filter_map(|e| {
            if let Event::Alarm(a) = e {
                Some(a.systemic)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(sys, vec![true, true]);

    // A focal drop (one cortical trace only) is not systemic.
    let mut m = Monitor::new(
        vec![
            meta("Cz L", 0, Role::Cortical, Criteria::ssep()),
            meta("Cz R", 0, Role::Cortical, Criteria::ssep()),
            meta("PF L", 1, Role::Peripheral, Criteria::ssep()),
        ],
        vec!["Cz".into(), "PF".into()],
    );
    let mut out = Vec::new();
    for t in 0..3 {
        settle(&mut m, t, 2.0, 37.0, 0.1, &mut out);
    }
    out.clear();
    for k in 1..=2 {
        let s = k as f64 * 40.0;
        m.on_average(&avg(1, s, 2.0, 37.0), || None, &mut out);
        m.on_average(&avg(0, s, 0.8, 37.0), || None, &mut out);
    }
    assert!(matches!(&out[..], [Event::Alarm(a)] if !a.systemic));
}

/// Four cortical traces (CP3, CP4, Cz L, Cz R) and a peripheral control at 2 µV baselines, then one average of
/// each per row (amplitudes, µV, in that order): the events after the baselines.
fn four_cortical(rows: &[[f64; 5]]) -> Vec<Event> {
    let traces = ["CP3", "CP4", "Cz L", "Cz R"]
        .iter()
        .map(|n| meta(n, 0, Role::Cortical, Criteria::ssep()))
        .chain([meta("PF L", 1, Role::Peripheral, Criteria::ssep())])
        .collect();
    let mut m = Monitor::new(traces, vec!["Cz".into(), "PF".into()]);
    let mut out = Vec::new();
    for t in 0..5 {
        settle(&mut m, t, 2.0, 37.0, 0.1, &mut out);
    }
    out.clear();
    for (k, row) in rows.iter().enumerate() {
        for (t, amp) in row.iter().enumerate() {
            m.on_average(&avg(t, 40.0 * (k + 1) as f64, *amp, 37.0), || None, &mut out);
        }
    }
    out
}

#[test]
fn one_low_average_of_unchanged_traces_does_not_make_a_focal_drop_systemic() {
    // The left tibial cortical response drops (focal). On the confirming average two unchanged cortical traces
    // read 78% once (noise: one average's ratio has an s.d. of 0.1–0.15 on noisy traces); over their latest two
    // averages they are at 89%: not depressed.
    let out = four_cortical(&[
        [2.0, 2.0, 2.0, 2.0, 2.0],
        [2.0, 2.0, 0.8, 2.0, 2.0],
        [1.56, 1.56, 0.8, 2.0, 2.0],
    ]);
    assert!(
        matches!(&out[..], [Event::Alarm(a)] if a.trace.as_deref() == Some("Cz L") && !a.systemic),
        "{out:?}"
    );
    // Two unchanged traces depressed over their latest averages as well (a global decline): systemic.
    let out = four_cortical(&[
        [1.5, 1.5, 2.0, 2.0, 2.0],
        [1.5, 1.5, 0.8, 2.0, 2.0],
        [1.5, 1.5, 0.8, 2.0, 2.0],
    ]);
    assert!(
        matches!(&out[..], [Event::Alarm(a)] if a.trace.as_deref() == Some("Cz L") && a.systemic),
        "{out:?}"
    );
}

/// A BAEP average of 1000 sweeps: residual noise ≈ 0.03 µV.
fn baep(t: f64, amp: f64, lat: f64) -> AverageInput {
    AverageInput {
        residual_noise_uv: Some(0.03),
        ..avg(0, t, amp, lat)
    }
}

#[test]
fn baep_needs_latency_and_amplitude_together_or_a_lost_wave_v() {
    let mut m = Monitor::new(
        vec![meta("BAEP", 0, Role::Brainstem, Criteria::baep())],
        vec!["ch0".into()],
    );
    let mut out = Vec::new();
    settle(&mut m, 0, 0.4, 5.7, 0.03, &mut out);
    out.clear();
    // +1.2 ms alone: no alarm.
    for t in 1..=3 {
        m.on_average(&baep(t as f64, 0.4, 6.9), || None, &mut out);
    }
    assert!(alarms(&out).is_empty());
    // +1.2 ms with 40% amplitude: latency alarm.
    for t in 4..=5 {
        m.on_average(&baep(t as f64, 0.16, 6.9), || None, &mut out);
    }
    assert_eq!(
        alarms(&out),
        vec![(AlarmKind::LatencyIncrease, AlarmState::Raised)]
    );
    out.clear();
    // Wave V gone (not found): response lost.
    for t in 6..=7 {
        let mut a = baep(t as f64, 0.0, 0.0);
        a.amplitude_uv = None;
        a.latency_ms = None;
        m.on_average(&a, || None, &mut out);
    }
    assert!(
        alarms(&out).contains(&(AlarmKind::ResponseLost, AlarmState::Raised)),
        "{out:?}"
    );
}

#[test]
fn mep_calls_an_80_percent_drop_but_not_a_60_percent_one() {
    let mut m = Monitor::new(
        vec![meta("TA L", 0, Role::Muscle, Criteria::mep())],
        vec!["ch0".into()],
    );
    let mut out = Vec::new();
    settle(&mut m, 0, 500.0, 30.0, 0.1, &mut out);
    out.clear();
    for t in 1..=3 {
        m.on_average(&avg(0, t as f64, 200.0, 30.0), || None, &mut out);
    }
    assert!(alarms(&out).is_empty());
    for t in 4..=5 {
        m.on_average(&avg(0, t as f64, 90.0, 30.0), || None, &mut out);
    }
    assert_eq!(alarms(&out), vec![(AlarmKind::AmplitudeDrop, AlarmState::Raised)]);
}
