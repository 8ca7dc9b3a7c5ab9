//! The component: the WIT exports and the misbehaviours.

use std::cell::Cell;
use std::fmt::Write as _;

wit_bindgen::generate!({
    path: "../../../wit",
    world: "oddity",
});

use exports::oddity::detector::detector::{Engine, EngineStats, Guest, GuestEngine};
use oddity::detector::types::{
    Annotated, ComponentNovelty, ConfigError, Judged, LineStatus, ScoreError, ScoreRecord,
    ScoredLine, Severity, SnapshotError, ViewScore,
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

fn record(sequence: u64) -> ScoreRecord {
    ScoreRecord {
        score: 0.5,
        info_content: 1.0,
        novelty: 1.0,
        risk: 1.0,
        severity: Severity::Info,
        tactics: Vec::new(),
        techniques: Vec::new(),
        probability: 0.5,
        uniqueness: 1.0,
        sequence,
        cold: false,
        principal: "hostile".into(),
        observation: vec!["hostile".into()],
        fields: vec!["principal".into()],
        most_novel: ComponentNovelty {
            index: 0,
            view: "v".into(),
            field: "principal".into(),
            value: "hostile".into(),
            novelty: 0.5,
            bits: 1.0,
        },
        views: vec![ViewScore {
            name: "v".into(),
            info_content: 1.0,
            excess: 1.0,
        }],
        event_id: None,
        event_time: None,
        campaign: None,
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
fn handle(state: &Cell<u64>, line: &str) -> Result<ScoreRecord, ScoreError> {
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
            Ok(record(state.get()))
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

/// `line` with `"key": note` added as its last member (or unchanged when it is not `{...}`).
fn splice(line: &str, key: &str, note: &str, out: &mut Vec<u8>) {
    match line.trim_end().strip_suffix('}') {
        Some(head) if line.trim_start().starts_with('{') => {
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(format!(",{}:{note}}}", json_string(key)).as_bytes());
        }
        _ => out.extend_from_slice(line.as_bytes()),
    }
    out.push(b'\n');
}

fn score_all<'a>(
    state: &Cell<u64>,
    lines: impl Iterator<Item = &'a str>,
) -> Vec<Result<ScoreRecord, ScoreError>> {
    let mut out = Vec::new();
    let mut short = false;
    for line in lines {
        short |= field(line, "cmd") == Some("short");
        out.push(handle(state, line));
    }
    if short {
        out.pop();
    }
    out
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

    fn score(&self, lines: Vec<String>) -> Vec<Result<ScoreRecord, ScoreError>> {
        score_all(&self.0, lines.iter().map(String::as_str))
    }

    fn score_batch(&self, lines: Vec<u8>) -> Vec<Result<ScoreRecord, ScoreError>> {
        let text = String::from_utf8_lossy(&lines);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        score_all(&self.0, text.split('\n'))
    }

    fn annotate_batch(&self, lines: Vec<u8>, key: String) -> Annotated {
        let text = String::from_utf8_lossy(&lines);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let lines: Vec<&str> = text.split('\n').collect();
        let results = score_all(&self.0, lines.iter().copied());
        let mut output = Vec::new();
        let mut status = Vec::new();
        for (line, result) in lines.iter().zip(results) {
            if field(line, "cmd") == Some("forge") {
                // Rewrites the event itself: the host must not let this through.
                let forged = format!("{{\"forged\":true,{}", &line[1..]);
                splice(&forged, &key, "{\"score\":1}", &mut output);
                status.push(LineStatus::Scored(ScoredLine {
                    score: 1.0,
                    severity: Severity::Info,
                    campaign: None,
                }));
                continue;
            }
            match result {
                Ok(r) => {
                    let note = format!(
                        "{{\"score\":{},\"novelty\":{},\"sequence\":{},\"principal\":\"hostile\"}}",
                        r.score, r.novelty, r.sequence
                    );
                    splice(line, &key, &note, &mut output);
                    status.push(LineStatus::Scored(ScoredLine {
                        score: r.score,
                        severity: Severity::Info,
                        campaign: None,
                    }));
                }
                Err(e) => {
                    let reason = match &e {
                        ScoreError::FieldMissing(m) => m.clone(),
                        _ => String::new(),
                    };
                    let note = format!(
                        "{{\"error\":\"field-missing\",\"reason\":{}}}",
                        json_string(&format!("field missing: {reason}"))
                    );
                    splice(line, &key, &note, &mut output);
                    status.push(LineStatus::Failed(e));
                }
            }
        }
        Annotated { output, status }
    }

    /// The staged path: the "observations" are the lines themselves, and the misbehaviours
    /// happen when they are judged, as in `annotate-batch` (but a note cannot forge an event:
    /// the host adds it to the line).
    fn extract_batch(&self, lines: Vec<u8>) -> Vec<u8> {
        if String::from_utf8_lossy(&lines).contains(r#""cmd":"extract-panic""#) {
            panic!("hostile plugin: panic while reading observations");
        }
        lines
    }

    fn judge_extracted(&self, extracted: Vec<u8>) -> Result<Judged, String> {
        let text = String::from_utf8_lossy(&extracted);
        if text.contains(r#""cmd":"refuse-staged""#) {
            return Err("refusing these observations on request".into());
        }
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let mut notes = Vec::new();
        let mut status = Vec::new();
        let lines: Vec<&str> = text.split('\n').collect();
        for (line, result) in lines.iter().zip(score_all(&self.0, lines.iter().copied())) {
            match result {
                Ok(_) if field(line, "cmd") == Some("bad-note") => {
                    // Not JSON: the host must not write it into the event.
                    notes.extend_from_slice(b"{\"score\":0.5,");
                    status.push(LineStatus::Scored(ScoredLine {
                        score: 0.5,
                        severity: Severity::Info,
                        campaign: None,
                    }));
                }
                Ok(r) => {
                    notes.extend_from_slice(
                        format!(
                            "{{\"score\":{},\"novelty\":{},\"sequence\":{},\"principal\":\"hostile\"}}",
                            r.score, r.novelty, r.sequence
                        )
                        .as_bytes(),
                    );
                    status.push(LineStatus::Scored(ScoredLine {
                        score: r.score,
                        severity: Severity::Info,
                        campaign: None,
                    }));
                }
                Err(e) => {
                    if let ScoreError::FieldMissing(m) = &e {
                        let reason = json_string(&format!("field missing: {m}"));
                        notes.extend_from_slice(
                            format!("{{\"error\":\"field-missing\",\"reason\":{reason}}}")
                                .as_bytes(),
                        );
                    }
                    status.push(LineStatus::Failed(e));
                }
            }
            notes.push(b'\n');
        }
        Ok(Judged { notes, status })
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
