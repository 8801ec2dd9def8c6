//! Opens the dashboard on the scripted demo case, 30 s after a clinical alarm was raised (L tibial amplitude
//! at 35 %), with 16 channels of synthetic live signal: the window to take a screenshot of.
//!
//! ```text
//! cargo run -p ionm-dashboard --example scripted -- [--light] [--replay] [--view averages|stack|trends|live|log]
//!                                                   [--close-after SECONDS] [--start SECONDS]
//! ```
//! Without a display it says so on one line and exits with status 2.

#![allow(clippy::print_stderr)]

use ionm_dashboard::demo::{DEMO_TRACES, DemoOptions, demo_case};
use ionm_dashboard::{
    DashboardApp, DashboardConfig, DashboardError, ScriptedSource, SyntheticConfig, SystemClock, ThemeChoice,
    View, run_native,
};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let mut config = DashboardConfig::default();
    let mut replay = false;
    let mut start = 540.0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--light" => config.theme = ThemeChoice::Light,
            "--replay" => replay = true,
            "--view" => {
                let v = args.next().unwrap_or_default();
                match View::ALL.iter().find(|x| x.label().eq_ignore_ascii_case(&v)) {
                    Some(x) => config.view = *x,
                    None => {
                        eprintln!("unknown view {v:?} (averages, stack, trends, live, log)");
                        return ExitCode::FAILURE;
                    }
                }
            }
            "--close-after" => config.close_after_s = args.next().and_then(|s| s.parse().ok()),
            "--start" => start = args.next().and_then(|s| s.parse().ok()).unwrap_or(start),
            other => {
                eprintln!("unknown argument {other:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    let clock = Arc::new(SystemClock::new());
    let case = demo_case(&DemoOptions::default());
    let duration = case.duration_s;
    let mut labels: Vec<String> = DEMO_TRACES.iter().map(|t| t.channel.to_owned()).collect();
    labels.extend(
        [
            "C3-C4", "Fz-Cz", "Erb L", "Erb R", "APB R", "AH L", "AH R", "TA L", "Pop L", "Pop R",
        ]
        .map(String::from),
    );
    let mut src = ScriptedSource::from_demo(case, clock.clone())
        .with_name(if replay {
            "replay demo-case.bdf"
        } else {
            "scripted demo"
        })
        .with_live_traces(SyntheticConfig {
            channels: 16,
            sample_rate_hz: 20_000,
            window_s: 20.0,
            seed: 1,
            labels,
        });
    if replay {
        src = src.as_replay(duration);
    } else {
        src = src.with_recording("demo-case.bdf");
    }
    let src = src.starting_at(start);
    let app = DashboardApp::with_config(Box::new(src), clock, config);
    match run_native(app, "ionm dashboard (scripted demo)") {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ DashboardError::NoDisplay) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
