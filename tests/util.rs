//! Helpers: locating binaries, spawning the simulator, reading event files.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `ionm` binary under test.
pub fn ionm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ionm"))
}

/// The `firmware-sim` binary, built by `cargo test --workspace` next to `ionm` (firmware-sim has integration
/// tests of its own, so cargo builds its binary in the same target directory).
pub fn firmware_sim() -> Command {
    let ionm = PathBuf::from(env!("CARGO_BIN_EXE_ionm"));
    let sim = ionm.with_file_name(format!("firmware-sim{}", std::env::consts::EXE_SUFFIX));
    assert!(
        sim.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p firmware-sim` first)",
        sim.display()
    );
    Command::new(sim)
}

/// A child process that is killed when dropped, so a failing test leaves nothing running.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Sends a signal by name (`STOP`, `CONT`, `KILL`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.0.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig} failed");
    }
}

/// Starts `firmware-sim --pty` with extra arguments; returns the process and the pty path it printed.
pub fn sim_on_pty(extra: &[&str]) -> (Proc, String) {
    let mut child = firmware_sim()
        .arg("--pty")
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("firmware-sim starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let path = line.trim().to_owned();
    assert!(
        path.starts_with("/dev/"),
        "firmware-sim printed {line:?} instead of a pty path"
    );
    (Proc(child), path)
}

/// A fresh empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ionm-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every line of a JSON Lines file.
pub fn read_events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// The records of one type.
pub fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == ty).collect()
}

/// The final stats record (written when the run ends).
pub fn summary(events: &[Value]) -> &Value {
    events
        .iter()
        .rev()
        .find(|e| e["type"] == "stats" && e["final"] == true)
        .expect("a final stats record")
}

/// A u64 field.
pub fn u(v: &Value, path: &[&str]) -> u64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_u64().unwrap_or_else(|| panic!("{path:?} missing in {v}"))
}
