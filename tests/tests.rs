//! End-to-end tests of the `ionm` binary against `firmware-sim`, over real serial APIs (pseudo-terminals).
//! One test binary, as ripgrep does; helpers in `util`.

mod recording;
mod scenarios;
mod serial;
mod util;
