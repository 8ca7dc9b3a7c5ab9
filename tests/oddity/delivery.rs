//! Alert delivery over HTTP, at least once: a receiver in the test answers as Splunk's HTTP
//! Event Collector and Elasticsearch's `_bulk` do, and injects failures (runs of 503, slow
//! answers, connections closed without an answer, a 400); oddity is killed with SIGKILL while
//! it delivers and started again. Every alert arrives, none is invented, the order within a
//! campaign is kept.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{example, oddity, run, tempdir};

/// What the receiver does with a request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    Status(u16),
    /// Answers 200 after this long (after the client gave up).
    Slow(Duration),
    /// Closes the connection without an answer.
    Close,
}

type Script = Box<dyn Fn(usize) -> Answer + Send>;

/// An HTTP receiver on 127.0.0.1: HEC on any path, `_bulk` on paths ending so.
struct Receiver {
    port: u16,
    /// The alerts taken (answered 2xx), in order of arrival.
    taken: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
    script: Arc<Mutex<Script>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start(script: Script) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let r = Receiver {
            port,
            taken: Arc::default(),
            requests: Arc::default(),
            script: Arc::new(Mutex::new(script)),
            stop: Arc::default(),
        };
        let (taken, requests, script, stop) = (
            r.taken.clone(),
            r.requests.clone(),
            r.script.clone(),
            r.stop.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let n = requests.fetch_add(1, Ordering::SeqCst);
                let answer = (script.lock().expect("script"))(n);
                serve(stream, answer, &taken);
            }
        });
        r
    }

    fn script(&self, script: Script) {
        *self.script.lock().expect("script") = script;
    }

    fn taken(&self) -> Vec<Value> {
        self.taken.lock().expect("taken").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one request from `stream` and answers it as `answer` says.
fn serve(stream: TcpStream, answer: Answer, taken: &Mutex<Vec<Value>>) {
    let Some((path, body)) = read_request(&stream) else {
        return;
    };
    let status = match answer {
        Answer::Close => return,
        Answer::Slow(wait) => {
            std::thread::sleep(wait);
            200
        }
        Answer::Status(s) => s,
        Answer::Ok => 200,
    };
    let reply = if status != 200 {
        format!("{{\"text\":\"injected {status}\",\"code\":9}}")
    } else if path.ends_with("/_bulk") {
        bulk(&body, taken)
    } else {
        let mut t = taken.lock().expect("taken");
        t.extend(
            serde_json::Deserializer::from_slice(&body)
                .into_iter::<Value>()
                .map(|v| v.expect("HEC events are JSON")),
        );
        "{\"text\":\"Success\",\"code\":0}".to_owned()
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

/// Takes a `_bulk` body: creates each document under its `_id`, 409 for one already there.
fn bulk(body: &[u8], taken: &Mutex<Vec<Value>>) -> String {
    let mut t = taken.lock().expect("taken");
    let known: HashSet<String> = t
        .iter()
        .map(|d| d["alertId"].as_str().unwrap_or("").to_owned())
        .collect();
    let lines: Vec<Value> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("_bulk lines are JSON"))
        .collect();
    let mut items = Vec::new();
    for pair in lines.chunks(2) {
        let id = pair[0]["create"]["_id"].as_str().expect("_id").to_owned();
        assert_eq!(pair[1]["alertId"], id.as_str(), "_id is the alert's id");
        let status = if known.contains(&id) { 409 } else { 201 };
        if status == 201 {
            t.push(pair[1].clone());
        }
        items.push(serde_json::json!({"create": {"_id": id, "status": status}}));
    }
    serde_json::json!({"errors": items.iter().any(|i| i["create"]["status"] != 201), "items": items})
        .to_string()
}

/// The request's path and body (gunzipped), or nothing if the client went away.
fn read_request(stream: &TcpStream) -> Option<(String, Vec<u8>)> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let (mut length, mut gzip) = (0, false);
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(v) = header.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        gzip |= header == "content-encoding: gzip";
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    if gzip {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .ok()?;
        body = plain;
    }
    Some((path, body))
}

/// The native alerts of the bundled example, in order, written to a file by the same binary.
fn expected_alerts(dir: &Path) -> Vec<Value> {
    let alerts = dir.join("expected.jsonl");
    let events = example("cloudtrail/events.jsonl.gz");
    run(
        &[
            "-q",
            "-o",
            "/dev/null",
            "--alerts",
            alerts.to_str().expect("utf-8"),
            events.to_str().expect("utf-8"),
        ],
        None,
    )
    .assert_ok();
    std::fs::read(&alerts)
        .expect("alerts")
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("json"))
        .collect()
}

/// The native alert inside each format the receiver took.
fn native(taken: &Value) -> &Value {
    if taken.get("sourcetype").is_some() {
        &taken["event"]
    } else {
        taken
    }
}

/// Every expected alert was taken, nothing else was, and each campaign's alerts first arrived
/// in the order they were raised.
fn check_delivery(expected: &[Value], taken: &[Value]) {
    let want: Vec<&str> = expected
        .iter()
        .map(|a| a["alertId"].as_str().expect("id"))
        .collect();
    let got: HashSet<&str> = taken
        .iter()
        .map(|a| native(a)["alertId"].as_str().expect("id"))
        .collect();
    let want_set: HashSet<&str> = want.iter().copied().collect();
    let lost: Vec<_> = want_set.difference(&got).collect();
    let invented: Vec<_> = got.difference(&want_set).collect();
    assert!(
        lost.is_empty(),
        "{} alerts lost, such as {:?}",
        lost.len(),
        lost.first()
    );
    assert!(
        invented.is_empty(),
        "{} alerts invented, such as {:?}",
        invented.len(),
        invented.first()
    );
    let rank: HashMap<&str, usize> = want.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut seen = HashSet::new();
    let mut last_in_campaign: HashMap<String, usize> = HashMap::new();
    for a in taken.iter().map(native) {
        let id = a["alertId"].as_str().expect("id");
        let Some(campaign) = a["campaign"]["id"].as_str() else {
            continue;
        };
        if !seen.insert(id) {
            continue;
        }
        let r = rank[id];
        let last = last_in_campaign.entry(campaign.to_owned()).or_insert(0);
        assert!(
            r >= *last,
            "campaign {campaign}: alert {id} arrived before an earlier one"
        );
        *last = r;
    }
}

/// A configuration with one HTTP sink at `url` (and `extra` lines in its table).
fn config(dir: &Path, url: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("oddity.toml");
    let text = format!(
        "[state]\nsave-every-events = 2048\n[alerts.queue]\ndrain = \"60s\"\n[[alerts.sink]]\nkind = \"http\"\nurl = \"{url}\"\ntimeout = \"1s\"\nbatch = 7\n{extra}\n"
    );
    std::fs::write(&path, text).expect("config");
    path
}

fn score_args<'a>(dir: &'a Path, conf: &'a Path, events: &'a Path) -> Vec<String> {
    [
        "-q",
        "--config",
        conf.to_str().expect("utf-8"),
        "--state",
        dir.join("m.snap").to_str().expect("utf-8"),
        "-o",
        "/dev/null",
        events.to_str().expect("utf-8"),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Waits until `f` holds, at most `secs`.
fn wait_until(secs: u64, what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "waited {secs} s for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn alerts_reach_a_failing_receiver_at_least_once_across_a_sigkill() {
    let dir = tempdir();
    let expected = expected_alerts(dir.path());
    assert!(expected.len() > 50, "the example raises alerts");
    // Runs of 503, a slow answer, a closed connection, then the receiver takes a few batches
    // and fails again for good: oddity is killed while it waits to try again.
    let receiver = Receiver::start(Box::new(|n| match n {
        0..=2 => Answer::Status(503),
        3 => Answer::Slow(Duration::from_millis(1500)),
        4 => Answer::Close,
        5..=8 => Answer::Ok,
        9 => Answer::Status(429),
        _ => Answer::Status(503),
    }));
    let url = format!(
        "http://127.0.0.1:{}/services/collector/event",
        receiver.port
    );
    let conf = config(
        dir.path(),
        &url,
        "format = \"splunk-hec\"\ntoken = \"test-token\"",
    );
    let events = example("cloudtrail/events.jsonl.gz");
    let args = score_args(dir.path(), &conf, &events);
    let mut child = oddity()
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start oddity");
    wait_until(60, "a run of failures after some deliveries", || {
        receiver.requests.load(Ordering::SeqCst) >= 12
    });
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    let before = receiver.taken().len();
    assert!(
        before > 0 && before < expected.len(),
        "{before} of {} alerts taken before the kill",
        expected.len()
    );
    receiver.script(Box::new(|n| {
        if n % 5 == 0 {
            Answer::Status(503)
        } else {
            Answer::Ok
        }
    }));
    let second = crate::util::run_cmd(oddity().args(&args), None);
    second.assert_ok();
    check_delivery(&expected, &receiver.taken());
    let queue = dir.path().join("m.snap.alerts");
    let left: u64 = std::fs::read_dir(&queue)
        .expect("queue dir")
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).expect("queue").flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "q"))
        .map(|f| f.metadata().expect("len").len())
        .sum();
    assert_eq!(left, 0, "the queue is empty once delivered");
}

#[test]
fn a_bulk_receiver_gets_each_alert_once_under_its_id() {
    let dir = tempdir();
    let expected = expected_alerts(dir.path());
    let receiver = Receiver::start(Box::new(|n| {
        if n % 3 == 1 {
            Answer::Close
        } else {
            Answer::Ok
        }
    }));
    let url = format!("http://127.0.0.1:{}/_bulk", receiver.port);
    let conf = config(dir.path(), &url, "index = \"oddity-alerts\"");
    let events = example("cloudtrail/events.jsonl.gz");
    crate::util::run_cmd(oddity().args(score_args(dir.path(), &conf, &events)), None).assert_ok();
    let taken = receiver.taken();
    check_delivery(&expected, &taken);
    assert_eq!(taken.len(), expected.len(), "_bulk creates each alert once");
}

#[test]
fn a_refused_batch_is_set_aside_with_an_error() {
    let dir = tempdir();
    let receiver = Receiver::start(Box::new(|_| Answer::Status(400)));
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let conf = config(dir.path(), &url, "gzip = false");
    let events = example("cloudtrail/events.jsonl.gz");
    let run = crate::util::run_cmd(
        oddity()
            .args(score_args(dir.path(), &conf, &events))
            .arg("-v"),
        None,
    );
    run.assert_ok();
    assert!(run.stderr.contains("HTTP 400"), "{}", run.stderr);
    let refused: Vec<_> = std::fs::read_dir(dir.path().join("m.snap.alerts"))
        .expect("queue dir")
        .flatten()
        .map(|d| d.path().join("refused.jsonl"))
        .collect();
    let text = std::fs::read(&refused[0]).expect("refused.jsonl");
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(
        lines,
        expected_alerts(dir.path()).len(),
        "every refused alert is kept"
    );
    assert!(receiver.taken().is_empty());
}
