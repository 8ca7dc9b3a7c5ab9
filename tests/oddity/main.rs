//! Integration tests: the real `oddity` binary with the real, embedded plugin.
//!
//! - `util`: running the binary and checking its output.
//! - `filter`: one line out per event, errors written through, stdin/stdout use.
//! - `data`: the bundled examples and the real CloudTrail data in `tests/data`.
//! - `state`: snapshots, and the A-then-B equals A+B guarantee.
//! - `config`: configuration errors and layering.
//! - `analyst`: alerts, the HTML report in headless Chromium, progress on a terminal.
//! - `pipeline`: the pipeline in-process, with sources and sinks in memory.
//! - `hostile`: bad lines and the dead-letter file, corrupt files, deep nesting, huge lines.
//! - `sandbox`: an untrusted plugin's capabilities, and its traps, recovered from.
//! - `crash`: kill -9, a failing disk, signals and a closed pipe; the state survives.
//! - `unattended`: no HOME (the compile cache's fallback), JSON logs.
//! - `shippers`: Debian's rsyslog and syslog-ng running the recipes of `examples/shippers/`.
//! - `delivery`: alerts over HTTP through a failing receiver and a SIGKILL, at least once.
//! - `scale_out`: NATS JetStream (a real nats-server): route, workers, a SIGKILL, no loss.
//! - `portable`: `oddity plugin export`, and the component in Node and Python, byte for byte.

#![allow(clippy::disallowed_methods)] // tests read and write their own files with std::fs

mod analyst;
mod config;
mod crash;
mod data;
mod delivery;
mod filter;
mod hostile;
mod pipeline;
mod portable;
mod sandbox;
mod scale_out;
mod shippers;
mod state;
mod unattended;
mod util;
