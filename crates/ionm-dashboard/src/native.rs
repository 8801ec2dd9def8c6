//! Opening the dashboard in a native window.

use crate::app::DashboardApp;
use std::ffi::OsString;

/// Why the window could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// No display server to open a window on (checked before trying).
    #[error("no display: neither WAYLAND_DISPLAY nor DISPLAY is set (use --headless, or start Xvfb)")]
    NoDisplay,
    /// The windowing system refused (e.g. `DISPLAY` names a server that is not running).
    #[error("cannot open a window on display {display:?}: {message}")]
    Window {
        /// The display asked for (`WAYLAND_DISPLAY` or `DISPLAY`).
        display: String,
        /// What winit said.
        message: String,
    },
    /// No GPU or software renderer (wgpu found no adapter).
    #[error("no graphics adapter for the dashboard window: {0}")]
    Graphics(String),
    /// Anything else eframe reported.
    #[error("the dashboard window failed: {0}")]
    Other(String),
}

/// True if a window can be attempted: on Linux and the BSDs, `WAYLAND_DISPLAY`, `WAYLAND_SOCKET` or `DISPLAY`
/// is set and not empty; elsewhere always.
pub fn display_available() -> bool {
    display_available_with(|k| std::env::var_os(k))
}

fn display_available_with(var: impl Fn(&str) -> Option<OsString>) -> bool {
    if cfg!(all(
        unix,
        not(target_os = "macos"),
        not(target_os = "ios"),
        not(target_os = "android")
    )) {
        ["WAYLAND_DISPLAY", "WAYLAND_SOCKET", "DISPLAY"]
            .iter()
            .any(|k| var(k).is_some_and(|v| !v.is_empty()))
    } else {
        true
    }
}

fn display_name() -> String {
    ["WAYLAND_DISPLAY", "DISPLAY"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}

/// Opens `app` in a window titled `title` and runs it until the window closes. Must be called on the main
/// thread. Returns [`DashboardError::NoDisplay`] at once, without touching the windowing system, when there is
/// no display; never panics for want of one.
pub fn run_native(app: DashboardApp, title: &str) -> Result<(), DashboardError> {
    if !display_available() {
        return Err(DashboardError::NoDisplay);
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(title)
            .with_inner_size([1600.0, 1000.0])
            .with_min_inner_size([800.0, 600.0]),
        ..Default::default()
    };
    eframe::run_native(title, options, Box::new(move |_cc| Ok(Box::new(app)))).map_err(map_error)
}

fn map_error(e: eframe::Error) -> DashboardError {
    match e {
        eframe::Error::Winit(e) => DashboardError::Window {
            display: display_name(),
            message: e.to_string(),
        },
        eframe::Error::WinitEventLoop(e) => DashboardError::Window {
            display: display_name(),
            message: e.to_string(),
        },
        eframe::Error::Wgpu(e) => DashboardError::Graphics(e.to_string()),
        other => DashboardError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_display_variables_means_no_display() {
        let none = |_: &str| None;
        let empty = |_: &str| Some(OsString::new());
        let x11 = |k: &str| (k == "DISPLAY").then(|| OsString::from(":99"));
        if cfg!(target_os = "linux") {
            assert!(!display_available_with(none));
            assert!(!display_available_with(empty));
        }
        assert!(display_available_with(x11));
        assert!(DashboardError::NoDisplay.to_string().contains("no display"));
    }
}
