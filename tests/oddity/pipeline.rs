//! The pipeline in-process: `pipeline::run` with sources and sinks in memory, no binary.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use clap::Parser as _;
use futures::future::BoxFuture;
use oddity::cli::Cli;
use oddity::input::{Batch, Frame, InputError, Item, ReadOptions, Source, Stream};
use oddity::output::{Memory, Sink};
use oddity::pipeline::{self, Io, Summary};
use oddity::settings::Settings;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::util::tempdir;

/// Settings from command-line flags (and no environment).
fn settings(flags: &[&str]) -> Settings {
    let cli =
        Cli::try_parse_from(std::iter::once("oddity").chain(flags.iter().copied())).expect("flags");
    Settings::load_with_env(&cli.score, Some(config::Map::new())).expect("settings")
}

fn staged_or_not(mut settings: Settings, staged: bool) -> Settings {
    settings.staged = staged;
    settings
}

fn memory(name: &str, text: &[u8]) -> Box<dyn Source> {
    Box::new(Stream::Memory {
        name: name.to_owned(),
        bytes: Bytes::copy_from_slice(text),
    })
}

fn event(user: &str, action: &str, n: usize) -> String {
    format!(
        r#"{{"eventTime":"2024-03-04T09:{:02}:00Z","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/{user}"}},"eventSource":"ec2.amazonaws.com","eventName":"{action}","sourceIPAddress":"198.51.100.7","eventID":"e{n}"}}"#,
        n % 60
    )
}

/// Runs the pipeline to its end; the summary and what the output sink holds.
fn run(settings: Settings, sources: Vec<Box<dyn Source>>, output: Box<dyn Sink>) -> Summary {
    let io = Io {
        sources,
        output,
        alerts: Vec::new(),
        hangups: None,
        replies: None,
        metrics: Default::default(),
    };
    runtime()
        .block_on(pipeline::run(settings, io, std::future::pending()))
        .expect("the run")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .strip_suffix(b"\n")
        .unwrap_or(bytes)
        .split(|&b| b == b'\n')
        .collect()
}

#[test]
fn every_input_line_gives_one_output_line_in_order_across_sources() {
    let mut first = String::new();
    for n in 0..300 {
        first.push_str(&event(
            ["raul", "ana"][n % 2],
            ["DescribeInstances", "RunInstances"][n % 3 % 2],
            n,
        ));
        first.push('\n');
    }
    first.push_str("not json\n\n[1,2]\n{ }\n");
    let second = format!(
        "{}\r\n{}",
        event("ops", "CreateSnapshot", 1),
        event("ops", "DeleteSnapshot", 2)
    );
    for staged in ["true", "false"] {
        let sink = Memory::default();
        let summary = run(
            staged_or_not(settings(&["-q", "--batch-size", "7"]), staged == "true"),
            vec![
                memory("first", first.as_bytes()),
                memory("second", second.as_bytes()),
            ],
            Box::new(sink.clone()),
        );
        let out = sink.contents();
        let got = lines(&out);
        let want: Vec<&str> = first.lines().chain(second.lines()).collect();
        assert_eq!(got.len(), want.len(), "staged={staged}");
        assert_eq!(
            (summary.events, summary.scored, summary.unscored),
            (306, 302, 4)
        );
        assert!(
            summary.breakdown.contains("not-json=1"),
            "{}",
            summary.breakdown
        );
        for (out, input) in got.iter().zip(&want) {
            let input = input.trim_end_matches('\r');
            match serde_json::from_slice::<Value>(out) {
                Ok(Value::Object(o)) if input.starts_with('{') => {
                    let note = o.get("novelty").expect("a note on every object");
                    assert!(note.get("score").is_some() || note["error"] == "field-missing");
                    assert!(out.starts_with(&input.as_bytes()[..input.len() - 1]));
                }
                _ => assert_eq!(*out, input.as_bytes(), "written as it came"),
            }
        }
    }
}

#[test]
fn one_stage_and_two_write_the_same_bytes() {
    let text: String = (0..2000)
        .map(|n| {
            event(
                ["raul", "ana", "ci"][n % 3],
                ["GetObject", "PutObject", "DeleteObject", "ListBuckets"][n % 4],
                n,
            ) + "\n"
        })
        .collect();
    let outputs: Vec<Vec<u8>> = [true, false]
        .iter()
        .map(|&staged| {
            let sink = Memory::default();
            run(
                staged_or_not(settings(&["-q"]), staged),
                vec![memory("events", text.as_bytes())],
                Box::new(sink.clone()),
            );
            sink.contents()
        })
        .collect();
    assert_eq!(outputs[0], outputs[1]);
}

/// A sink that takes `capacity` writes, then reports a closed pipe.
#[derive(Debug)]
struct Closing {
    capacity: usize,
    taken: Arc<Mutex<Vec<u8>>>,
}

impl Sink for Closing {
    fn name(&self) -> String {
        "closing".into()
    }

    fn write(&mut self, lines: Vec<u8>) -> BoxFuture<'_, io::Result<()>> {
        let result = if self.capacity == 0 {
            Err(io::ErrorKind::BrokenPipe.into())
        } else {
            self.capacity -= 1;
            self.taken.lock().expect("lock").extend_from_slice(&lines);
            Ok(())
        };
        Box::pin(std::future::ready(result))
    }

    fn finish(&mut self) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

fn learned(state: &Path, user: &str) -> u64 {
    let flags = ["-q", "--state", state.to_str().expect("utf-8")];
    let sink = Memory::default();
    // Scoring nothing from the saved state tells nothing; the events it learned are in the
    // sequence of the next event of a known principal.
    run(
        settings(&flags),
        vec![memory(
            "probe",
            format!("{}\n", event(user, "DescribeInstances", 999_999)).as_bytes(),
        )],
        Box::new(sink.clone()),
    );
    let out: Value = serde_json::from_slice(lines(&sink.contents())[0]).expect("json");
    out["novelty"]["sequence"].as_u64().expect("sequence") - 1
}

#[test]
fn a_closed_output_ends_the_run_quietly_and_saves_what_was_learned() {
    let dir = tempdir();
    let state = dir.path().join("m.snap");
    let text: String = (0..5000)
        .map(|n| event("raul", "DescribeInstances", n) + "\n")
        .collect();
    let taken = Arc::new(Mutex::new(Vec::new()));
    let summary = run(
        settings(&[
            "-q",
            "--batch-size",
            "100",
            "--state",
            state.to_str().expect("utf-8"),
        ]),
        vec![memory("events", text.as_bytes())],
        Box::new(Closing {
            capacity: 3,
            taken: taken.clone(),
        }),
    );
    assert!(summary.broken_pipe);
    assert!(!summary.partial(), "a closed pipe is not a failure");
    let written = lines(&taken.lock().expect("lock")).len() as u64;
    assert_eq!(written, 300, "three batches taken");
    // What the scorer learned before it heard of the close is saved: at least what was
    // written, at most what was read.
    let learned = learned(&state, "raul");
    assert!((written..=5000).contains(&learned), "{learned}");
}

/// A live source: sends `events` events, then waits for more until the run stops.
#[derive(Debug)]
struct Live {
    events: usize,
}

impl Source for Live {
    fn name(&self) -> String {
        "live".into()
    }

    fn read<'a>(
        &'a self,
        index: u32,
        _opts: ReadOptions,
        tx: &'a mpsc::Sender<Batch>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<u64, InputError>> {
        Box::pin(async move {
            for chunk in (0..self.events).collect::<Vec<_>>().chunks(64) {
                let batch = chunk
                    .iter()
                    .map(|&n| Item {
                        frame: Frame::Line(Bytes::from(event("ana", "GetObject", n))),
                        source: index,
                        number: n as u64 + 1,
                    })
                    .collect();
                if tx.send(batch).await.is_err() {
                    break;
                }
            }
            cancel.cancelled().await;
            Ok(self.events as u64)
        })
    }
}

#[test]
fn a_shutdown_finishes_the_batches_in_flight_and_saves() {
    let dir = tempdir();
    let state = dir.path().join("m.snap");
    let sink = Memory::default();
    let io = Io {
        sources: vec![Box::new(Live { events: 1000 })],
        output: Box::new(sink.clone()),
        alerts: Vec::new(),
        hangups: None,
        replies: None,
        metrics: Default::default(),
    };
    let settings = settings(&["-q", "--state", state.to_str().expect("utf-8")]);
    // Far more than 1,000 events take: all are written before the stop.
    let shutdown = async { tokio::time::sleep(std::time::Duration::from_secs(1)).await };
    let summary = runtime()
        .block_on(pipeline::run(settings, io, shutdown))
        .expect("the run");
    assert!(summary.interrupted);
    assert_eq!(summary.events, 1000);
    assert_eq!(lines(&sink.contents()).len(), 1000);
    assert_eq!(
        learned(&state, "ana"),
        1000,
        "learned exactly what was written"
    );
}

#[test]
fn alerts_go_to_their_own_sink() {
    let (output, alerts) = (Memory::default(), Memory::default());
    let dir = tempdir();
    let file = dir.path().join("alerts.jsonl");
    let settings = settings(&["-q", "--alerts", file.to_str().expect("utf-8")]);
    let example = Stream::File(crate::util::example("cloudtrail/events.jsonl.gz"));
    let io = Io {
        sources: vec![Box::new(example)],
        output: Box::new(output.clone()),
        alerts: vec![Box::new(alerts.clone())],
        hangups: None,
        replies: None,
        metrics: Default::default(),
    };
    let summary = runtime()
        .block_on(pipeline::run(settings, io, std::future::pending()))
        .expect("the run");
    let (counts, name) = summary.alerts.expect("alerts on");
    assert_eq!(name, "<memory>");
    let got = alerts.contents();
    assert!(counts.total() > 0, "the example alerts");
    assert_eq!(lines(&got).len() as u64, counts.total());
    for line in lines(&got) {
        let alert: Value = serde_json::from_slice(line).expect("an alert is JSON");
        assert!(alert["severity"].is_string(), "{alert}");
    }
    assert!(
        !file.exists(),
        "run opens no file for alerts: the sink is given"
    );
    assert_eq!(lines(&output.contents()).len() as u64, summary.events);
}

#[test]
fn every_note_follows_the_schema() {
    let schema: Value = serde_json::from_slice(
        &std::fs::read(crate::util::root().join("wit/note.schema.json")).expect("the schema"),
    )
    .expect("the schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("a valid JSON Schema");
    let stratus = crate::util::test_data().join("stratus-red-team_detonation_logs");
    let example = crate::util::example("cloudtrail/events.jsonl.gz");
    let hostile = concat!(
        "{ }\n{\"userIdentity\":null}\n{\"eventName\":\"\\u0000\\\"\"}\n",
        "{\"userIdentity\":{\"type\":\"Root\",\"arn\":\"arn:aws:iam::1:root\"},\"eventName\":\"ConsoleLogin\",\"eventTime\":\"x\"}\n"
    );
    let sink = Memory::default();
    let summary = run(
        settings(&["-q"]),
        vec![
            Box::new(Stream::File(example)),
            Box::new(Stream::File(stratus)),
            memory("hostile", hostile.as_bytes()),
        ],
        Box::new(sink.clone()),
    );
    assert!(summary.events > 30_000, "{}", summary.events);
    let out = sink.contents();
    let mut notes = 0;
    for line in lines(&out) {
        let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let note = event.get("novelty").expect("every object has a note");
        if let Some(error) = validator.iter_errors(note).next() {
            panic!("{error} at {}: {note}", error.instance_path());
        }
        notes += 1;
    }
    assert_eq!(notes as u64, summary.events);
}
