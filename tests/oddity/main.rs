//! Integration tests: the real `oddity` binary with the real, embedded plugin.
//!
//! - `util`: running the binary and checking its output.
//! - `filter`: one line out per event, errors written through, stdin/stdout use.
//! - `data`: the bundled examples and the real CloudTrail data in `../shared/data`.
//! - `state`: snapshots, and the A-then-B equals A+B guarantee.
//! - `config`: configuration errors and layering.
//! - `analyst`: alerts, the HTML report in headless Chromium, progress on a terminal.

mod analyst;
mod config;
mod data;
mod filter;
mod state;
mod util;
