//! Log shippers, for real: Debian's rsyslog and syslog-ng run oddity from the recipes in
//! `examples/shippers/` (in the foreground, on files in a temporary directory and sockets on
//! 127.0.0.1), and what comes out is byte for byte what the plain filter writes. `.ci/run`
//! installs rsyslog and unpacks syslog-ng (the two packages conflict) into `/opt/syslog-ng`; a
//! machine without them fails these tests, naming how to install them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{example, isolated, root, run, send_signal, tempdir};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// Debian's syslog-ng-core, unpacked (`dpkg -x`) beside rsyslog: the packages conflict.
const SYSLOG_NG: &str = "/opt/syslog-ng/usr/sbin/syslog-ng";
const SYSLOG_NG_LIBS: &str = "/opt/syslog-ng/usr/lib/syslog-ng";

/// The first `n` events of the bundled example, and lines a shipper meets besides events.
fn input(n: usize) -> Vec<u8> {
    let file = std::fs::File::open(example("cloudtrail/events.jsonl.gz")).expect("example");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(file), &mut text)
        .expect("gunzip");
    let mut lines: Vec<String> = text.lines().take(n).map(str::to_owned).collect();
    lines.insert(3, "not json".into());
    lines.insert(7, "[1,2]".into());
    lines.insert(11, "{\"eventName\":\"NoPrincipal\"}".into());
    (lines.join("\n") + "\n").into_bytes()
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The recipe `name` with its placeholders filled in for `dir` (and a free port).
fn recipe(name: &str, dir: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(root().join("examples/shippers").join(name)).expect("recipe");
    let text = text
        .replace("@DIR@", dir.to_str().expect("utf-8"))
        .replace("@ODDITY@", env!("CARGO_BIN_EXE_oddity"))
        .replace("@PORT@", &free_port().to_string());
    let conf = dir.join(name);
    std::fs::write(&conf, text).expect("write");
    conf
}

/// Starts rsyslogd in the foreground with `conf`.
fn rsyslogd(conf: &Path, dir: &Path) -> Child {
    assert!(
        Path::new(RSYSLOGD).is_file(),
        "{RSYSLOGD} is missing: install Debian's rsyslog (apt-get install rsyslog; .ci/run does)"
    );
    Command::new(RSYSLOGD)
        .args(["-n", "-f"])
        .arg(conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        // The plugin cache of the tests (rsyslog starts its children with an empty environment:
        // oddity then caches beside its state).
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rsyslogd")
}

/// Starts the unpacked syslog-ng in the foreground with `conf`, its files in `dir`. syslog-ng
/// hands its environment to program() children: they share the tests' plugin cache.
fn syslog_ng(conf: &Path, dir: &Path) -> Child {
    assert!(
        Path::new(SYSLOG_NG).is_file(),
        "{SYSLOG_NG} is missing: unpack Debian's syslog-ng-core into /opt/syslog-ng, as it conflicts \
         with rsyslog (apt-get download syslog-ng-core && dpkg -x syslog-ng-core_*.deb /opt/syslog-ng; \
         .ci/run does)"
    );
    isolated(Command::new(SYSLOG_NG))
        .env("LD_LIBRARY_PATH", SYSLOG_NG_LIBS)
        .args(["-F", "--no-caps", "-f"])
        .arg(conf)
        .arg(format!("--module-path={SYSLOG_NG_LIBS}/3.38"))
        .arg("-R")
        .arg(dir.join("syslog-ng.persist"))
        .arg("-p")
        .arg(dir.join("syslog-ng.pid"))
        .arg("-c")
        .arg(dir.join("syslog-ng.ctl"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start syslog-ng")
}

/// Waits until `path` holds `lines` lines, at most 60 s; failing, shows the shipper's standard
/// error and oddity's `--log-file` (`oddity.log` beside `path`).
fn wait_for_lines(path: &Path, lines: usize, child: &mut Child) {
    let start = Instant::now();
    loop {
        let n = std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        if n >= lines {
            return;
        }
        if start.elapsed() > Duration::from_secs(60) || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            let log = std::fs::read_to_string(path.with_file_name("oddity.log"));
            panic!(
                "{} has {n} of {lines} lines; the shipper's errors: {stderr}; oddity's log: {}",
                path.display(),
                log.unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the shipper `child` with SIGTERM and waits for it, at most 30 s.
fn stop(mut child: Child) {
    send_signal(&child, "-TERM");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the shipper did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the plain filter writes for `events`.
fn plain(events: &[u8]) -> Vec<u8> {
    let out = run(&["-q"], Some(events));
    out.assert_ok();
    out.stdout
}

/// Runs the recipe `name` in the shipper that `start` starts over `n` events (and the bad lines
/// of [`input`]); what it writes must be what the plain filter writes.
fn recipe_writes_what_the_filter_writes(name: &str, n: usize, start: fn(&Path, &Path) -> Child) {
    let dir = tempdir();
    let events = input(n);
    let lines = events.iter().filter(|&&b| b == b'\n').count();
    std::fs::write(dir.path().join("events.jsonl"), &events).expect("write");
    let conf = recipe(name, dir.path());
    let mut child = start(&conf, dir.path());
    let scored = dir.path().join("scored.jsonl");
    wait_for_lines(&scored, lines, &mut child);
    stop(child);
    let got = std::fs::read(&scored).expect("scored");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&plain(&events)),
        "{name}: the shipper's output is the filter's lines"
    );
}

#[test]
fn rsyslog_mmexternal_replaces_each_message_with_its_scored_event() {
    recipe_writes_what_the_filter_writes("rsyslog-mmexternal.conf", 500, rsyslogd);
}

#[test]
fn rsyslog_omprog_with_confirmations_gets_every_event_scored() {
    recipe_writes_what_the_filter_writes("rsyslog-omprog.conf", 300, rsyslogd);
}

#[test]
fn syslog_ng_program_sends_the_scored_events_back_over_tcp() {
    recipe_writes_what_the_filter_writes("syslog-ng.conf", 500, syslog_ng);
}

#[test]
fn alerts_reach_rsyslog_as_rfc5424_messages_over_tcp_whole_within_its_default_size() {
    let dir = tempdir();
    let port = free_port();
    let received = dir.path().join("received.log");
    let conf = dir.path().join("receiver.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\n\
             template(name=\"t\" type=\"string\" string=\"%syslogseverity-text%|%app-name%|%msg%\\n\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"r\")\n\
             ruleset(name=\"r\") {{ action(type=\"omfile\" file=\"{file}\" template=\"t\") }}\n",
            dir = dir.path().display(),
            file = received.display()
        ),
    )
    .expect("write");
    let mut child = rsyslogd(&conf, dir.path());
    let events = example("cloudtrail/events.jsonl.gz");
    let events = events.to_str().expect("utf-8");
    // rsyslog listens once it has started: oddity sends again until it is.
    let url = format!("syslog+tcp://127.0.0.1:{port}");
    std::thread::sleep(Duration::from_millis(500));
    run(&["-q", events, "-o", "/dev/null", "--alerts", &url], None).assert_ok();
    let file = dir.path().join("alerts.jsonl");
    run(
        &[
            "-q",
            events,
            "-o",
            "/dev/null",
            "--alerts",
            file.to_str().expect("utf-8"),
        ],
        None,
    )
    .assert_ok();
    let want: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .expect("alerts")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    wait_for_lines(&received, want.len(), &mut child);
    stop(child);
    let got = std::fs::read_to_string(&received).expect("received");
    let got: Vec<(&str, &str, serde_json::Value)> = got
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, '|');
            let (sev, app, msg) = (
                parts.next().expect("severity"),
                parts.next().expect("app"),
                parts.next().expect("msg"),
            );
            (
                sev,
                app,
                serde_json::from_str(msg).expect("the alert, whole"),
            )
        })
        .collect();
    assert_eq!(got.len(), want.len(), "every alert arrives once");
    let mut shortened = 0;
    for ((sev, app, alert), expected) in got.iter().zip(&want) {
        assert_eq!(alert["alertId"], expected["alertId"], "in order");
        assert!(
            alert.to_string().len() < 8096,
            "within rsyslog's default size"
        );
        if let Some(k) = alert["campaignEventsOmitted"].as_u64() {
            shortened += 1;
            let all = expected["campaignEvents"].as_array().expect("events");
            assert_eq!(
                alert["campaignEvents"].as_array().expect("events")[..],
                all[k as usize..],
                "the newest events are kept"
            );
        } else {
            assert_eq!(alert["campaignEvents"], expected["campaignEvents"]);
        }
        assert_eq!(*app, "oddity");
        let wanted = match expected["severity"].as_str().expect("severity") {
            "critical" => "crit",
            "high" => "err",
            "medium" => "warning",
            "low" => "notice",
            _ => "info",
        };
        assert_eq!(*sev, wanted);
    }
    let longest = want.iter().map(|a| a.to_string().len()).max();
    assert!(
        shortened > 0,
        "the example's longest alert ({longest:?} bytes) arrives shortened"
    );
}
