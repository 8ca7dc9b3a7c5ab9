//! The analyst view: alerts, the HTML report (rendered in headless Chromium) and progress.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::data::example_labels;
use crate::util::{Run, example, isolated, oddity, run, run_cmd, tempdir};

/// Default alert settings (docs/alerts.md).
/// The severities from which events alert by default (`alerts.min-severity = "medium"`).
const ALERTING: [&str; 3] = ["medium", "high", "critical"];
const CAMPAIGN_MIN_EVENTS: u64 = 2;

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Events in the bundled CloudTrail example (JSON lines, gzip).
fn example_events() -> usize {
    let file = std::fs::File::open(example("cloudtrail/events.jsonl.gz")).expect("example");
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(file), &mut text)
        .expect("gunzip the example");
    text.iter().filter(|&&b| b == b'\n').count()
}

/// The principal (ARN) of the labelled attack in the bundled example, from `labels.csv`.
fn example_attacker() -> String {
    let text = std::fs::read_to_string(example("cloudtrail/labels.csv")).expect("labels");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
    let (principal, scenario) = (col("principal"), col("scenario"));
    let attackers: HashSet<String> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| !f[scenario].is_empty())
        .map(|f| f[principal].to_owned())
        .collect();
    assert_eq!(attackers.len(), 1, "one attacker: {attackers:?}");
    attackers.into_iter().next().expect("one")
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("a JSON line"))
        .collect()
}

/// Scores the bundled CloudTrail example with alerts to a file; returns the run, the scored
/// events and the alerts.
fn example_with_alerts(dir: &Path) -> (Run, Vec<Value>, Vec<Value>) {
    let events = example("cloudtrail/events.jsonl.gz");
    let alerts = dir.join("alerts.jsonl");
    let out = run(
        &["-q", path_str(&events), "--alerts", path_str(&alerts)],
        None,
    );
    out.assert_ok();
    let stream = out.json();
    let alerts = json_lines(&std::fs::read(&alerts).expect("the alerts file"));
    (out, stream, alerts)
}

#[test]
fn an_alert_carries_its_id_time_detector_and_the_fields_to_triage_with() {
    let dir = tempdir();
    let (_, stream, alerts) = example_with_alerts(dir.path());
    assert!(!alerts.is_empty());
    let by_id: HashMap<&str, &Value> = stream
        .iter()
        .map(|e| (e["eventID"].as_str().expect("eventID"), e))
        .collect();
    let mut ids = HashSet::new();
    for alert in &alerts {
        let id = alert["alertId"].as_str().expect("alertId");
        assert!(ids.insert(id.to_owned()), "alert ids are unique: {id}");
        let at = alert["detectedAt"].as_str().expect("detectedAt");
        assert!(at.parse::<jiff::Timestamp>().is_ok(), "{at}");
        assert_eq!(alert["detector"]["name"], "oddity");
        assert!(
            alert["detector"]["contract"]
                .as_str()
                .is_some_and(|c| c.starts_with("oddity:detector@"))
        );
        let event = by_id[alert["eventId"].as_str().expect("eventId")];
        let raw = &alert["raw"];
        assert_eq!(raw["eventName"], event["eventName"]);
        assert_eq!(raw["sourceIp"], event["sourceIPAddress"]);
        assert_eq!(raw["identityArn"], event["userIdentity"]["arn"]);
        assert_eq!(raw["region"], event["awsRegion"]);
    }
    // The same run again gives the same ids: a receiver dedupes on them.
    let again = tempdir();
    let (_, _, repeated) = example_with_alerts(again.path());
    let ids_again: HashSet<String> = repeated
        .iter()
        .map(|a| a["alertId"].as_str().expect("alertId").to_owned())
        .collect();
    assert_eq!(ids, ids_again);
}

#[test]
fn alerts_hold_what_crosses_the_thresholds_and_the_stream_keeps_every_event() {
    let dir = tempdir();
    let (_, stream, alerts) = example_with_alerts(dir.path());
    assert_eq!(
        stream.len(),
        example_events(),
        "the scored stream keeps every event"
    );
    // What should alert, derived from the scored stream itself.
    let mut expected = Vec::new();
    let mut alerted_campaigns = HashSet::new();
    let mut campaign_events: HashMap<String, Vec<String>> = HashMap::new();
    for (i, e) in stream.iter().enumerate() {
        let n = &e["novelty"];
        let id = e["eventID"].as_str().expect("eventID").to_owned();
        let c = &n["campaign"];
        if let Some(cid) = c["id"].as_str() {
            campaign_events
                .entry(cid.to_owned())
                .or_default()
                .push(id.clone());
        }
        let severe = ALERTING.contains(&n["severity"].as_str().expect("severity"));
        let crossing = severe && c["events"].as_u64().unwrap_or(0) >= CAMPAIGN_MIN_EVENTS;
        if crossing {
            let cid = c["id"].as_str().expect("campaign id").to_owned();
            let first = alerted_campaigns.insert(cid.clone());
            let story = first.then(|| campaign_events[&cid].clone());
            expected.push((i + 1, id, "campaign", Some(first), story));
        } else if severe {
            expected.push((i + 1, id, "event", None, None));
        }
    }
    assert!(
        !expected.is_empty(),
        "the example has events above the thresholds"
    );
    assert_eq!(
        alerts.len(),
        expected.len(),
        "one alert per qualifying event"
    );
    for (a, (line, id, kind, first, story)) in alerts.iter().zip(&expected) {
        assert_eq!(a["kind"], *kind, "{a}");
        assert_eq!(a["eventId"], id.as_str(), "{a}");
        let source = a["source"].as_str().expect("source");
        assert!(
            source.ends_with(&format!("events.jsonl.gz:{line}")),
            "source {source} names the input line {line}"
        );
        let event = &stream[line - 1];
        assert_eq!(a["eventTime"], event["eventTime"]);
        assert_eq!(a["principal"], event["novelty"]["principal"]);
        assert_eq!(a["score"], event["novelty"]["score"]);
        assert_eq!(a["novelty"], event["novelty"]["novelty"]);
        assert_eq!(a["campaign"], event["novelty"]["campaign"]);
        assert_eq!(a["observation"], event["novelty"]["observation"]);
        let m = &event["novelty"]["mostNovelComponent"];
        for k in ["view", "field", "value", "novelty"] {
            assert_eq!(a["explanation"][k], m[k], "explanation.{k}");
        }
        assert_eq!(a["firstAlert"].as_bool(), *first);
        let listed: Option<Vec<String>> = a["campaignEvents"].as_array().map(|s| {
            s.iter()
                .map(|e| e["eventId"].as_str().expect("id").to_owned())
                .collect()
        });
        assert_eq!(
            &listed, story,
            "a campaign's first alert lists its events so far"
        );
    }
}

#[test]
fn alerts_on_stdout_need_the_stream_in_a_file() {
    let events = example("cloudtrail/events.jsonl.gz");
    let out = run(&["-q", path_str(&events), "--alerts", "-"], None);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("alerts.file") && out.stderr.contains("-o FILE"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());

    let dir = tempdir();
    let (_, _, from_file) = example_with_alerts(dir.path());
    let scored = dir.path().join("scored.jsonl");
    let out = run(
        &[path_str(&events), "--alerts", "-", "-o", path_str(&scored)],
        None,
    );
    out.assert_ok();
    // The same alerts but for when they were written.
    let undated = |alerts: Vec<Value>| -> Vec<Value> {
        alerts
            .into_iter()
            .map(|mut a| {
                a.as_object_mut().expect("object").remove("detectedAt");
                a
            })
            .collect()
    };
    assert_eq!(
        undated(out.json()),
        undated(from_file.clone()),
        "standard output holds the alerts, as the file would"
    );
    let stream = std::fs::read(&scored).expect("scored file");
    assert_eq!(
        stream.iter().filter(|&&b| b == b'\n').count(),
        example_events(),
        "the file holds every event"
    );
    assert!(
        out.stderr.contains(&format!("{} alerts", from_file.len()))
            && out.stderr.contains("standard output"),
        "the summary counts the alerts: {}",
        out.stderr
    );
}

#[test]
fn alert_settings_are_validated_and_layered() {
    let dir = tempdir();
    let config = dir.path().join("oddity.toml");
    std::fs::write(
        &config,
        "[alerts]\nfile = \"a.jsonl\"\nmin-severity = \"severe\"\n",
    )
    .expect("write");
    let out = run(&["-c", path_str(&config)], Some(b""));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("alerts.min-severity") && out.stderr.contains("oddity.toml"),
        "{}",
        out.stderr
    );
    std::fs::write(&config, "[alerts]\nmin-severity = \"low\"\n").expect("write");
    let out = run(&["-c", path_str(&config)], Some(b""));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("alerts.file") && out.stderr.contains("--alerts"),
        "thresholds without a file: {}",
        out.stderr
    );
    // Every event alerts from severity info; the environment sets it, the flag the file.
    let alerts = dir.path().join("all.jsonl");
    std::fs::write(&config, "[alerts]\nfile = \"elsewhere.jsonl\"\n").expect("write");
    let input = (0..30)
        .map(|i| format!("{{\"userIdentity\":{{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::1:user/u{}\"}},\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"ListBuckets\",\"eventID\":\"e{i}\"}}\n", i % 3))
        .collect::<String>();
    let out = run_cmd(
        oddity()
            .args(["-q", "-c", path_str(&config), "--alerts", path_str(&alerts)])
            .env("ODDITY_ALERTS__MIN_SEVERITY", "info")
            .current_dir(dir.path()),
        Some(input.as_bytes()),
    );
    out.assert_ok();
    assert_eq!(out.lines(), 30);
    let lines = json_lines(&std::fs::read(&alerts).expect("alerts"));
    assert_eq!(lines.len(), 30, "from info: every event alerts");
    assert!(!dir.path().join("elsewhere.jsonl").exists());
    // The alert file is appended to, run after run.
    let out = run_cmd(
        oddity()
            .args(["-q", "--alerts", path_str(&alerts)])
            .env("ODDITY_ALERTS__MIN_SEVERITY", "info"),
        Some(input.as_bytes()),
    );
    out.assert_ok();
    assert_eq!(
        json_lines(&std::fs::read(&alerts).expect("alerts")).len(),
        60
    );
}

/// The requirement behind alerts and campaigns: the stolen keys (`labels.csv`) probing, then
/// exfiltrating, are one story for the analyst. Every stage of the labelled chain (1: who am I,
/// 2: discovery, 3: CreateSnapshot, 4: waiting on it, 5: sharing it with a foreign account,
/// 6: DeleteSnapshot) belongs to one campaign of that principal, in order, and the alerts file
/// holds that campaign with every stage.
#[test]
fn cloudtrail_example_exfiltration_chain_forms_one_campaign_and_alerts_hold_it() {
    let dir = tempdir();
    let (_, stream, alerts) = example_with_alerts(dir.path());
    let labels = example_labels();
    // The chain in stream order: (step, eventName, campaign id).
    let chain: Vec<(u32, String, Option<String>, String)> = stream
        .iter()
        .filter_map(|e| {
            let id = e["eventID"].as_str()?;
            let (_, step) = labels.get(id)?;
            Some((
                *step,
                e["eventName"].as_str().expect("eventName").to_owned(),
                e["novelty"]["campaign"]["id"].as_str().map(str::to_owned),
                id.to_owned(),
            ))
        })
        .collect();
    assert!(chain.len() >= 6, "{chain:?}");
    let ids: HashSet<&str> = chain.iter().filter_map(|c| c.2.as_deref()).collect();
    assert_eq!(ids.len(), 1, "the chain is one campaign: {chain:?}");
    let campaign = *ids.iter().next().expect("one");
    let in_campaign: Vec<&(u32, String, Option<String>, String)> =
        chain.iter().filter(|c| c.2.is_some()).collect();
    let steps: Vec<u32> = in_campaign.iter().map(|c| c.0).collect();
    assert!(
        steps.windows(2).all(|w| w[0] <= w[1]),
        "stages in order: {steps:?}"
    );
    for step in 1..=6 {
        assert!(
            steps.contains(&step),
            "stage {step} is in the campaign: {chain:?}"
        );
    }
    // The campaign record lists the stages' actions in order, and is the attacker's.
    let last = stream
        .iter()
        .rfind(|e| e["novelty"]["campaign"]["id"] == campaign)
        .expect("campaign event");
    let record = &last["novelty"]["campaign"];
    assert!(
        record["principal"]
            .as_str()
            .is_some_and(|p| p.ends_with(&example_attacker())),
        "{record}"
    );
    let actions: Vec<&str> = record["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a.as_str().expect("action"))
        .collect();
    let mut rest = actions.iter();
    for c in &in_campaign {
        assert!(
            rest.any(|a| *a == c.1),
            "{} (stage {}) in order in {actions:?}",
            c.1,
            c.0
        );
    }
    // The alerts file holds it: campaign alerts for it that name every chain event in it.
    let mine: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["kind"] == "campaign" && a["campaign"]["id"] == campaign)
        .collect();
    assert!(!mine.is_empty(), "no campaign alert for {campaign}");
    assert_eq!(mine[0]["firstAlert"], true);
    let mut named: HashSet<&str> = mine.iter().filter_map(|a| a["eventId"].as_str()).collect();
    for s in mine[0]["campaignEvents"]
        .as_array()
        .expect("campaign events")
    {
        named.insert(s["eventId"].as_str().expect("id"));
    }
    for c in &in_campaign {
        assert!(
            named.contains(c.3.as_str()),
            "stage {} ({}) is in the alerts",
            c.0,
            c.1
        );
    }
}

/// `chromium`: `ODDITY_CHROMIUM`, or `chromium` on the path (Debian's package; `.ci/run`
/// installs it).
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ODDITY_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    })
}

/// Runs headless Chromium on `page` with `extra` arguments; returns (stdout, stderr).
fn headless(browser: &Path, profile: &Path, page: &Path, extra: &[String]) -> (String, String) {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        // Nothing may be fetched: every host name fails to resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start chromium");
    let (mut out, mut err) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).expect("read stdout");
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).expect("read stderr");
        s
    });
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        reader.join().expect("stdout reader"),
        err_reader.join().expect("stderr reader"),
    )
}

#[test]
fn the_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing: .ci/run installs it (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
        return;
    };
    let dir = tempdir();
    let scored = dir.path().join("scored.jsonl");
    run(
        &[
            "-q",
            path_str(&example("cloudtrail/events.jsonl.gz")),
            "-o",
            path_str(&scored),
        ],
        None,
    )
    .assert_ok();
    let page = dir.path().join("report.html");
    let out = run(
        &[
            "report",
            path_str(&scored),
            "-o",
            path_str(&page),
            "--top",
            "25",
        ],
        None,
    );
    out.assert_ok();
    assert!(
        out.stderr
            .contains(&format!("{n} lines ({n} scored)", n = example_events())),
        "{}",
        out.stderr
    );
    let html = std::fs::read_to_string(&page).expect("the report");
    for fetch in ["src=", "<link", "@import", "url("] {
        assert!(!html.contains(fetch), "the page loads nothing: {fetch}");
    }

    let profile = dir.path().join("chromium-profile");
    let (dom, log) = headless(&browser, &profile, &page, &["--dump-dom".to_owned()]);
    assert!(
        dom.contains("data-report-ready=\"1\""),
        "the page's script ran to the load event; chromium said:\n{log}"
    );
    assert!(
        !dom.contains("data-report-errors=\""),
        "script errors on the page: {}",
        dom.lines()
            .find(|l| l.contains("data-report-errors"))
            .unwrap_or_default()
    );
    let page_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Uncaught") || (l.contains("CONSOLE") && l.contains("rror")))
        .collect();
    assert!(page_errors.is_empty(), "{page_errors:#?}");
    // The plots, the top events and a campaign timeline are in the rendered document.
    let section = |id: &str| -> &str {
        let start = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id} in the DOM"));
        &dom[start..]
    };
    for plot in ["plot-bits", "plot-score", "plot-learning"] {
        let s = section(plot);
        let svg = &s[..s.find("</svg>").expect("an svg")];
        assert!(
            svg.contains("<svg") && svg.contains("<rect") && svg.contains("<circle"),
            "#{plot} has a plot with points"
        );
    }
    let top = section("top-events");
    let top = &top[..top.find("</table>").expect("table end")];
    assert_eq!(
        top.matches("<tr data-event-id=").count(),
        25,
        "the top events table has --top rows"
    );
    let campaigns = section("campaigns");
    let article = campaigns
        .find("<article class=\"campaign\"")
        .map(|i| &campaigns[i..])
        .expect("a campaign");
    let article = &article[..article.find("</article>").expect("article end")];
    assert!(
        article.contains("class=\"timeline\"") && article.contains("<svg"),
        "the campaign has a timeline"
    );
    assert!(
        article.contains("<table class=\"steps\"") && article.contains("data-event-id="),
        "the campaign lists its events"
    );

    // The screenshot is kept for people to look at (not committed).
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.png");
    let _ = std::fs::remove_file(&shot);
    let (_, log) = headless(
        &browser,
        &profile,
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,2400".to_owned(),
            "--hide-scrollbars".to_owned(),
        ],
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}):\n{log}"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "a real screenshot"
    );
    eprintln!("report screenshot: {}", shot.display());
}

/// The process-launch example scored into `dir`/scored.jsonl.
fn scored_process_launch(dir: &Path) -> PathBuf {
    let scored = dir.join("scored.jsonl");
    let events = example("process-launch/events.jsonl");
    let profile = example("process-launch/profile.toml");
    run(
        &[
            "-q",
            "--profile",
            path_str(&profile),
            path_str(&events),
            "-o",
            path_str(&scored),
        ],
        None,
    )
    .assert_ok();
    scored
}

#[test]
fn the_report_reads_standard_input_and_gzip() {
    let dir = tempdir();
    let scored = scored_process_launch(dir.path());
    let text = std::fs::read(&scored).expect("scored");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &text).expect("gzip");
    let gz_path = dir.path().join("scored.jsonl.gz");
    std::fs::write(&gz_path, gz.finish().expect("gzip")).expect("write gz");
    let from_stdin = run(&["report", "-o", "-", "--top", "5"], Some(&text));
    from_stdin.assert_ok();
    let html = String::from_utf8(from_stdin.stdout.clone()).expect("utf-8");
    assert!(html.starts_with("<!doctype html>") && html.contains("&lt;stdin&gt;"));
    let from_gz = run(
        &["report", path_str(&gz_path), "-o", "-", "--top", "5"],
        None,
    );
    from_gz.assert_ok();
    let strip = |h: &str| {
        h.lines()
            .filter(|l| !l.contains("from "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(&html),
        strip(&String::from_utf8(from_gz.stdout).expect("utf-8")),
        "the same report from a gzip file"
    );
    assert!(
        html.matches("<tr data-event-id=").count() >= 5,
        "the process-launch events have ids"
    );
}

#[test]
fn the_report_leaves_out_events_before_since() {
    let dir = tempdir();
    let scored = scored_process_launch(dir.path());
    let times: Vec<String> = json_lines(&std::fs::read(&scored).expect("scored"))
        .iter()
        .map(|e| e["timestamp"].as_str().expect("timestamp").to_owned())
        .collect();
    // The last hours (the stream runs from 2024-05-06 to 2024-05-07): fewer than 1,000 events
    // after, between 1,000 and 999,999 before (the page groups digits).
    let after = times
        .iter()
        .filter(|t| t.as_str() >= "2024-05-07T12:00:00Z")
        .count();
    let before = times.len() - after;
    assert!(
        after > 0 && after < 1000 && (1000..1_000_000).contains(&before),
        "{after} after, {before} before"
    );
    let out = run(
        &[
            "report",
            path_str(&scored),
            "-o",
            "-",
            "--since",
            "2024-05-07T12:00:00Z",
        ],
        None,
    );
    out.assert_ok();
    let html = String::from_utf8(out.stdout.clone()).expect("utf-8");
    assert!(
        html.contains(&format!("{after} scored events")),
        "the header counts the {after} events since"
    );
    assert!(
        html.contains(&format!(
            "{},{:03} scored events before --since 2024-05-07T12:00:00Z",
            before / 1000,
            before % 1000
        )),
        "the report says what it left out"
    );
    assert!(
        !html.contains("2024-05-06T"),
        "no event of the first day is shown"
    );
    let shown = html.matches("2024-05-07T").count();
    assert!(shown > 0, "events of the last hours are shown");
    let bad = run(
        &["report", path_str(&scored), "-o", "-", "--since", "soon"],
        None,
    );
    assert_eq!(bad.code, Some(1), "{}", bad.stderr);
    assert!(bad.stderr.contains("--since"), "{}", bad.stderr);
}

#[test]
fn without_a_terminal_there_is_only_the_summary() {
    let events = example("cloudtrail/events.jsonl.gz");
    let dir = tempdir();
    let out = run(
        &[
            path_str(&events),
            "-o",
            path_str(&dir.path().join("s.jsonl")),
        ],
        None,
    );
    out.assert_ok();
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{:?}", out.stderr);
    assert!(
        lines[0].starts_with(&format!("oddity: {} events (", example_events())),
        "{}",
        lines[0]
    );
    assert!(!out.stderr.contains('\r'), "no progress redraws");
}

/// On a terminal (a pseudo-terminal from `script`), progress is drawn on standard error
/// while events are scored, then cleared for the summary; `--quiet` draws nothing.
#[test]
fn on_a_terminal_progress_is_shown_then_the_summary() {
    let script = Path::new("/usr/bin/script");
    if !script.is_file() {
        eprintln!("skipped: no /usr/bin/script to make a pseudo-terminal");
        return;
    }
    let dir = tempdir();
    // Five copies of the example: long enough for several redraws.
    let text = std::fs::read(example("cloudtrail/events.jsonl.gz")).expect("example");
    let many = dir.path().join("many.jsonl.gz");
    std::fs::write(&many, text.repeat(5)).expect("write");
    let bin = env!("CARGO_BIN_EXE_oddity");
    let scored = dir.path().join("s.jsonl");
    let shell = |quiet: &str| format!("{bin} {quiet} {} -o {}", path_str(&many), path_str(&scored));
    let on_tty = |quiet: &str| {
        let out = run_cmd(
            isolated(Command::new(script)).args(["-qfec", &shell(quiet), "/dev/null"]),
            None,
        );
        out.assert_ok();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_tty("");
    assert!(
        shown.contains(" events, ") && shown.contains("highest score"),
        "a progress line: {shown:?}"
    );
    let summary = shown
        .lines()
        .last()
        .expect("a last line")
        .rsplit('\r')
        .next()
        .expect("text");
    assert!(
        summary.contains(&format!("oddity: {} events (", 5 * example_events())),
        "the summary ends the run: {shown:?}"
    );
    let quiet = on_tty("-q");
    assert!(quiet.trim().is_empty(), "--quiet draws nothing: {quiet:?}");
}

/// The alerts of the bundled example in `format`.
fn example_alerts_as(format: &str) -> Vec<Value> {
    let dir = tempdir();
    let events = example("cloudtrail/events.jsonl.gz");
    let alerts = dir.path().join("alerts.jsonl");
    run(
        &[
            "-q",
            path_str(&events),
            "--alerts",
            path_str(&alerts),
            "--alerts-format",
            format,
        ],
        None,
    )
    .assert_ok();
    json_lines(&std::fs::read(&alerts).expect("the alerts file"))
}

/// `doc`'s fields as ECS names them: dotted paths to values (arrays of values kept whole).
fn flatten(prefix: &str, doc: &Value, out: &mut Vec<(String, Value)>) {
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

/// Whether `value` is a value of the ECS type `kind`.
fn ecs_typed(kind: &str, value: &Value) -> bool {
    match kind {
        "keyword" | "constant_keyword" | "wildcard" | "match_only_text" | "text" | "flattened" => {
            value.is_string()
        }
        "ip" => value
            .as_str()
            .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok()),
        "date" => value
            .as_str()
            .is_some_and(|s| s.parse::<jiff::Timestamp>().is_ok()),
        "long" | "integer" | "short" | "byte" | "unsigned_long" => value.is_u64() || value.is_i64(),
        "float" | "double" | "scaled_float" | "half_float" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => false,
    }
}

#[test]
fn ecs_alerts_follow_the_elastic_common_schema() {
    let schema: Value = serde_json::from_slice(
        &std::fs::read(crate::util::test_data().join("ecs/ecs_flat_8.17.0.json")).expect("ECS"),
    )
    .expect("JSON");
    let fields = &schema["fields"];
    let alerts = example_alerts_as("ecs");
    assert!(!alerts.is_empty());
    for alert in &alerts {
        let mut flat = Vec::new();
        flatten("", alert, &mut flat);
        for (name, value) in flat {
            // oddity's own alert rides under the custom field `oddity`; `labels` holds keywords.
            if name.starts_with("oddity.") {
                continue;
            }
            if let Some(label) = name.strip_prefix("labels.") {
                assert!(value.is_string() && !label.contains('.'), "{name}: {value}");
                continue;
            }
            let field = &fields[&name];
            assert!(field.is_object(), "{name} is not an ECS 8.17 field");
            let kind = field["type"].as_str().expect("type");
            let values = match &value {
                Value::Array(items) => {
                    assert_eq!(field["array"], true, "{name} is not an array in ECS");
                    items.clone()
                }
                one => vec![one.clone()],
            };
            for v in &values {
                assert!(ecs_typed(kind, v), "{name}: {v} is not of ECS type {kind}");
                if let Some(allowed) = field["allowed_values"].as_array() {
                    assert!(
                        allowed.contains(v),
                        "{name}: {v} is not one of ECS's {allowed:?}"
                    );
                }
            }
        }
        assert_eq!(alert["event"]["kind"], "alert");
        assert_eq!(alert["ecs"]["version"], "8.17.0");
        assert!(alert["oddity"]["alertId"].is_string());
    }
    // The exfiltration chain's alert carries the account it shares with and its tactic.
    assert!(alerts.iter().any(|a| {
        a["event"]["action"] == "ModifySnapshotAttribute"
            && a["threat"]["tactic"]["name"]
                .as_array()
                .is_some_and(|t| t.contains(&Value::from("exfiltration")))
            && a["source"]["ip"].is_string()
    }));
}

#[test]
fn splunk_hec_alerts_are_collector_envelopes() {
    let alerts = example_alerts_as("splunk-hec");
    let native = example_alerts_as("native");
    assert_eq!(alerts.len(), native.len());
    for (hec, native) in alerts.iter().zip(&native) {
        let keys: Vec<&str> = hec
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        for key in &keys {
            assert!(
                [
                    "time",
                    "host",
                    "source",
                    "sourcetype",
                    "index",
                    "fields",
                    "event"
                ]
                .contains(key),
                "{key} is not a key of the HEC event envelope"
            );
        }
        assert!(hec["time"].is_number() && hec["sourcetype"] == "oddity:alert");
        assert_eq!(hec["event"]["alertId"], native["alertId"]);
    }
}

#[test]
fn suppression_rules_keep_matching_alerts_out_and_are_counted() {
    let dir = tempdir();
    let events = example("cloudtrail/events.jsonl.gz");
    let (_, _, all) = example_with_alerts(dir.path());
    let phill = |a: &Value| a["principal"].as_str().is_some_and(|p| p.contains("phill"));
    let of_phill = all.iter().filter(|a| phill(a)).count();
    assert!(of_phill > 0, "the example's chain alerts");
    let rules = dir.path().join("suppress.toml");
    let alerts = dir.path().join("suppressed-alerts.jsonl");
    for (expires, suppressed) in [("2999-01-01", true), ("2020-01-01", false)] {
        std::fs::write(
            &rules,
            format!(
                "[[rule]]\nprincipal = \"*user/phill\"\nreason = \"a test: phill's chain is known\"\nexpires = \"{expires}\"\nby = \"ana\"\n"
            ),
        )
        .expect("write");
        let _ = std::fs::remove_file(&alerts);
        let out = run(
            &[
                path_str(&events),
                "--alerts",
                path_str(&alerts),
                "--suppress",
                path_str(&rules),
            ],
            None,
        );
        out.assert_ok();
        let got = json_lines(&std::fs::read(&alerts).expect("alerts"));
        if suppressed {
            assert!(!got.iter().any(phill), "no alert of phill's");
            assert_eq!(
                got.len(),
                all.len() - of_phill,
                "the others as without rules"
            );
            assert!(
                out.stderr
                    .contains(&format!("{of_phill} suppressed by rules")),
                "{}",
                out.stderr
            );
        } else {
            assert_eq!(got.len(), all.len(), "an expired rule suppresses nothing");
            assert!(out.stderr.contains("has expired"), "{}", out.stderr);
        }
    }
    std::fs::write(
        &rules,
        "[[rule]]\naction = \"X\"\nexpires = \"2999-01-01\"\n",
    )
    .expect("write");
    let out = run(
        &[
            path_str(&events),
            "--alerts",
            path_str(&alerts),
            "--suppress",
            path_str(&rules),
        ],
        None,
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("alerts.suppress") && out.stderr.contains("reason"),
        "{}",
        out.stderr
    );
}

/// Checks `doc` against the OCSF attributes `attrs` (an object of the resolved schema): every
/// attribute is known, of its base type, in its enum, and every required one is there.
fn ocsf_valid(schema: &Value, attrs: &Value, doc: &Value, path: &str) {
    let doc = doc
        .as_object()
        .unwrap_or_else(|| panic!("{path} is not an object"));
    for (name, spec) in attrs.as_object().expect("attributes") {
        if spec["requirement"] == "required" {
            assert!(doc.contains_key(name), "{path}.{name} is required by OCSF");
        }
    }
    for (name, value) in doc {
        let at = format!("{path}.{name}");
        let spec = &attrs[name];
        assert!(spec.is_object(), "{at} is not an OCSF attribute here");
        let values = if spec["array"] == true {
            value
                .as_array()
                .unwrap_or_else(|| panic!("{at} must be an array"))
                .clone()
        } else {
            assert!(!value.is_array(), "{at} must not be an array");
            vec![value.clone()]
        };
        for v in &values {
            if let Some(object) = spec["object"].as_str() {
                if object == "object" {
                    assert!(v.is_object(), "{at}: an object");
                    continue;
                }
                let inner = &schema["objects"][object]["attributes"];
                ocsf_valid(schema, inner, v, &at);
                continue;
            }
            let ok = match spec["base"].as_str().expect("base type") {
                "string_t" => v.is_string(),
                "integer_t" | "long_t" => v.is_i64() || v.is_u64(),
                "float_t" => v.is_number(),
                "boolean_t" => v.is_boolean(),
                "json_t" => true,
                other => panic!("{at}: unknown base type {other}"),
            };
            assert!(ok, "{at}: {v} is not of type {}", spec["type"]);
            if let Some(allowed) = spec["enum"].as_array() {
                assert!(allowed.contains(v), "{at}: {v} is not one of {allowed:?}");
            }
        }
    }
}

#[test]
fn ocsf_alerts_are_detection_findings() {
    let schema: Value = serde_json::from_slice(
        &std::fs::read(crate::util::test_data().join("ocsf/detection_finding_1.2.0.json"))
            .expect("OCSF"),
    )
    .expect("JSON");
    let alerts = example_alerts_as("ocsf");
    assert!(!alerts.is_empty());
    for alert in &alerts {
        ocsf_valid(&schema, &schema["class"]["attributes"], alert, "finding");
        assert_eq!(alert["class_uid"], 2004);
        assert_eq!(alert["type_uid"], 200_401);
        assert!(alert["unmapped"]["oddity"]["alertId"].is_string());
    }
    assert!(alerts.iter().any(|a| {
        a["evidences"][0]["api"]["operation"] == "ModifySnapshotAttribute"
            && a["finding_info"]["attacks"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x["tactic"]["name"] == "exfiltration"))
    }));
}

#[test]
fn ack_records_a_verdict_and_a_benign_one_stops_the_behaviour_alerting() {
    let dir = tempdir();
    let events = example("cloudtrail/events.jsonl.gz");
    let (_, _, alerts) = example_with_alerts(dir.path());
    let alerts_file = dir.path().join("alerts.jsonl");
    let target = alerts
        .iter()
        .find(|a| a["observation"]["action"] == "ModifySnapshotAttribute")
        .expect("the chain's alert");
    let id = target["alertId"].as_str().expect("id");
    let (principal, action) = (
        target["principal"].clone(),
        target["observation"]["action"].clone(),
    );
    let verdicts = dir.path().join("verdicts.jsonl");
    let rules = dir.path().join("rules.toml");
    let ack = |verdict: &str, id: &str| {
        run(
            &[
                "ack",
                id,
                "--verdict",
                verdict,
                "--by",
                "ana",
                "--reason",
                "sharing with our backup account",
                "--alerts",
                path_str(&alerts_file),
                "--verdicts",
                path_str(&verdicts),
                "--suppress",
                path_str(&rules),
            ],
            None,
        )
    };
    ack("malicious", id).assert_ok();
    assert!(!rules.exists(), "a malicious verdict suppresses nothing");
    ack("benign", id).assert_ok();
    let recorded = json_lines(&std::fs::read(&verdicts).expect("verdicts"));
    assert_eq!(recorded.len(), 2);
    for (v, verdict) in recorded.iter().zip(["malicious", "benign"]) {
        assert_eq!(
            (&v["alertId"], &v["verdict"], &v["by"]),
            (&Value::from(id), &Value::from(verdict), &Value::from("ana"))
        );
        assert_eq!((&v["principal"], &v["action"]), (&principal, &action));
        assert!(
            v["at"]
                .as_str()
                .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok())
        );
    }
    assert!(recorded[1]["suppressedUntil"].is_string());
    // Scored again with the rule: that principal's action no longer alerts, the rest does.
    let again = dir.path().join("again.jsonl");
    run(
        &[
            "-q",
            path_str(&events),
            "--alerts",
            path_str(&again),
            "--suppress",
            path_str(&rules),
        ],
        None,
    )
    .assert_ok();
    let after = json_lines(&std::fs::read(&again).expect("alerts"));
    assert!(
        !after
            .iter()
            .any(|a| a["principal"] == principal && a["observation"]["action"] == action)
    );
    assert!(after.len() < alerts.len() && !after.is_empty());
    let missing = ack("benign", "0000000000000000");
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("no alert 0000000000000000"),
        "{}",
        missing.stderr
    );
}
