//! The component: the WIT exports and the misbehaviours.

use std::cell::Cell;
use std::fmt::Write as _;

wit_bindgen::generate!({
    path: "../../../wit",
    world: "oddity",
});

use exports::oddity::detector::detector::{Engine, EngineStats, Guest, GuestEngine};
use oddity::detector::types::{
    Batch, BatchError, ConfigError, Judged, ScoreError, Severity, SnapshotError, Verdict,
};

const MAGIC: &[u8] = b"HOSTILE1";

struct Component;

impl Guest for Component {
    type Engine = Hostile;
}

/// The lines scored so far: the whole "model".
struct Hostile(Cell<u64>);

/// The text after `"key":` in `line`, up to the next `"`, `,` or `}`.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = line[at..].trim_start_matches('"');
    let end = rest.find(['"', ',', '}']).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn verdict() -> Verdict {
    Verdict {
        score: 0.5,
        novelty: 1.0,
        risk: 1.0,
        severity: Severity::Info,
        campaign_risk: None,
        cold: false,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Tries everything the contract does not grant; `key=value` pairs separated by spaces.
fn probe(line: &str) -> String {
    use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
    let mut out = String::new();
    let dirs = wasip2::filesystem::preopens::get_directories();
    let _ = write!(out, "preopens={}", dirs.len());
    for path in ["/etc/hostname", "/", "."] {
        let seen = match std::fs::read(path) {
            Ok(b) => format!("read:{}", String::from_utf8_lossy(&b).trim()),
            Err(e) => format!("err:{:?}", e.kind()),
        };
        let _ = write!(out, " file[{path}]={seen}");
    }
    if let Some(path) = field(line, "file") {
        let seen = match std::fs::read(path) {
            Ok(b) => format!("read:{}", String::from_utf8_lossy(&b).trim()),
            Err(e) => format!("err:{:?}", e.kind()),
        };
        let _ = write!(out, " file={seen}");
    }
    let env = wasip2::cli::environment::get_environment();
    let _ = write!(
        out,
        " env={} std-env={} args={} cwd={:?}",
        env.len(),
        std::env::vars_os().count(),
        wasip2::cli::environment::get_arguments().len(),
        wasip2::cli::environment::initial_cwd()
    );
    for (k, v) in &env {
        let _ = write!(out, " env[{k}]={v}");
    }
    let wall = wasip2::clocks::wall_clock::now();
    let _ = write!(
        out,
        " wall={}.{:09} mono={} std-time={:?}",
        wall.seconds,
        wall.nanoseconds,
        wasip2::clocks::monotonic_clock::now(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)
    );
    let (a, b) = wasip2::random::insecure_seed::insecure_seed();
    let _ = write!(
        out,
        " random={} insecure={} seed={a:x}{b:x}",
        hex(&wasip2::random::random::get_random_bytes(16)),
        hex(&wasip2::random::insecure::get_insecure_random_bytes(16)),
    );
    let network = wasip2::sockets::instance_network::instance_network();
    let tcp = match wasip2::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) {
        Err(e) => format!("err:{}", e.name()),
        Ok(socket) => {
            let port = field(line, "port")
                .and_then(|p| p.parse().ok())
                .unwrap_or(80);
            let to = IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port,
                address: (127, 0, 0, 1),
            });
            match socket.start_connect(&network, to) {
                Err(e) => format!("connect-err:{}", e.name()),
                Ok(()) => {
                    socket.subscribe().block();
                    match socket.finish_connect() {
                        Ok(_) => "connected".to_owned(),
                        Err(e) => format!("finish-err:{}", e.name()),
                    }
                }
            }
        }
    };
    let udp = match wasip2::sockets::udp_create_socket::create_udp_socket(IpAddressFamily::Ipv4) {
        Err(e) => format!("err:{}", e.name()),
        Ok(_) => "created".to_owned(),
    };
    let dns = match wasip2::sockets::ip_name_lookup::resolve_addresses(&network, "localhost") {
        Err(e) => format!("err:{}", e.name()),
        Ok(_) => "resolving".to_owned(),
    };
    let _ = write!(out, " tcp={tcp} udp={udp} dns={dns}");
    let stdout = wasip2::cli::stdout::get_stdout().blocking_write_and_flush(b"HOSTILE-STDOUT\n");
    let stderr = wasip2::cli::stderr::get_stderr().blocking_write_and_flush(b"HOSTILE-STDERR\n");
    let _ = write!(out, " stdout={} stderr={}", stdout.is_ok(), stderr.is_ok());
    out
}

/// Misbehaves as `line` asks; returns its result when it returns at all.
fn handle(state: &Cell<u64>, line: &str) -> Result<u64, ScoreError> {
    match field(line, "cmd").unwrap_or("") {
        "probe" => Err(ScoreError::FieldMissing(probe(line))),
        "panic" => panic!("hostile plugin: panic on request"),
        "spin" => {
            let mut n = 0u64;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "oom" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 8 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "sleep" => {
            wasip2::clocks::monotonic_clock::subscribe_duration(u64::MAX).block();
            Err(ScoreError::FieldMissing("woke up".into()))
        }
        "exit" => {
            wasip2::cli::exit::exit(Ok(()));
            Err(ScoreError::FieldMissing("still here after exit".into()))
        }
        _ => {
            state.set(state.get() + 1);
            Ok(state.get())
        }
    }
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The note of one line: misbehaving as `line` asks (`forge`: a note that tries to add members
/// to the event; `bad-note`: a note that is not JSON), or a plain score record.
fn note(line: &str, result: &Result<u64, ScoreError>, notes: &mut String) {
    match (field(line, "cmd"), result) {
        (Some("forge"), Ok(_)) => notes.push_str(r#"{"score":1},"forged":true,"x":{}"#),
        (Some("bad-note"), Ok(_)) => notes.push_str(r#"{"score":0.5,"#),
        (_, Ok(sequence)) => {
            let _ = write!(
                notes,
                r#"{{"score":0.5,"novelty":1.0,"sequence":{sequence},"principal":"hostile"}}"#
            );
        }
        (_, Err(ScoreError::FieldMissing(m) | ScoreError::Duplicate(m))) => {
            let reason = json_string(&format!("field missing: {m}"));
            let _ = write!(notes, r#"{{"error":"field-missing","reason":{reason}}}"#);
        }
        (_, Err(_)) => {}
    }
    notes.push('\n');
}

/// Judges the lines of a batch (a `short` line drops the last verdict: a broken contract).
fn judge_all(state: &Cell<u64>, text: &str) -> Judged {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let mut notes = String::new();
    let mut verdicts = Vec::new();
    let mut short = false;
    for line in text.split('\n') {
        short |= field(line, "cmd") == Some("short");
        let result = handle(state, line);
        note(line, &result, &mut notes);
        verdicts.push(result.map(|_| verdict()));
    }
    if short {
        verdicts.pop();
    }
    Judged { notes, verdicts }
}

impl GuestEngine for Hostile {
    fn create(_config: String) -> Result<Engine, ConfigError> {
        Ok(Engine::new(Hostile(Cell::new(0))))
    }

    fn restore(_config: String, snapshot: Vec<u8>) -> Result<Engine, SnapshotError> {
        let count = snapshot
            .strip_prefix(MAGIC)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| SnapshotError::NotASnapshot("not a hostile snapshot".into()))?;
        Ok(Engine::new(Hostile(Cell::new(count))))
    }

    /// Observations are the lines themselves, and the misbehaviours happen when they are
    /// judged, whichever way the batch comes.
    fn judge(&self, batch: Batch) -> Result<Judged, BatchError> {
        let text = match &batch {
            Batch::Lines(bytes) | Batch::Observations(bytes) => String::from_utf8_lossy(bytes),
            Batch::Text(text) => text.as_str().into(),
        };
        if matches!(batch, Batch::Observations(_)) && text.contains(r#""cmd":"refuse-staged""#) {
            return Err(BatchError::Corrupt(
                "refusing these observations on request".into(),
            ));
        }
        Ok(judge_all(&self.0, &text))
    }

    fn extract(&self, lines: Vec<u8>) -> Vec<u8> {
        if String::from_utf8_lossy(&lines).contains(r#""cmd":"extract-panic""#) {
            panic!("hostile plugin: panic while reading observations");
        }
        lines
    }

    fn entities(&self, lines: Vec<u8>) -> Vec<Option<String>> {
        lines
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|_| None)
            .collect()
    }

    fn share_population(&self) -> Vec<u8> {
        Vec::new()
    }

    fn merge_population(&self, _share: Vec<u8>) -> Result<(), BatchError> {
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&self.0.get().to_le_bytes());
        out
    }

    fn stats(&self) -> EngineStats {
        EngineStats {
            events: self.0.get(),
            nodes: 0,
            max_nodes: 0,
            principals: 1,
            prunes: 0,
        }
    }

    fn fingerprint(&self) -> String {
        "hostile".into()
    }
}

export!(Component);
