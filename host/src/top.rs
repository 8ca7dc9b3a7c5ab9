//! `oddity top`: the riskiest events of a scored stream, as a table for people.
//!
//! Reads scored JSON lines (files or standard input), keeps the `count` highest by risk (ties
//! broken by score, then by position), and prints one row each: risk, severity, score, event
//! time, principal, the observation, the explanation, the tactics and the event id.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::Write;
use std::path::PathBuf;

use crate::annotation::{self, Annotation};
use crate::scored::short_principal;

/// One candidate row.
#[derive(Debug)]
struct Row {
    risk: f64,
    score: f64,
    position: u64,
    note: Annotation,
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Row {}
impl PartialOrd for Row {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Row {
    /// Greater is riskier; earlier events win ties.
    fn cmp(&self, other: &Self) -> Ordering {
        crate::scored::by_risk(
            (self.risk, self.score, self.position),
            (other.risk, other.score, other.position),
        )
    }
}

/// Reads scored streams and prints the `count` most novel events.
pub fn run(
    paths: &[PathBuf],
    key: &str,
    count: usize,
    since: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let since = since.map(crate::scored::parse_since).transpose()?;
    let mut heap: BinaryHeap<std::cmp::Reverse<Row>> = BinaryHeap::with_capacity(count + 1);
    let mut position = 0u64;
    // Lines with no score record (not scored, not JSON, or too long to read), told at the end.
    let mut unscored = 0u64;
    let mut scan = |input: &mut dyn std::io::Read| -> anyhow::Result<()> {
        let mut reader = crate::scored::open(input)?;
        let mut line = Vec::new();
        while let Some(fits) =
            crate::scored::read_line(&mut reader, &mut line, crate::scored::MAX_LINE)?
        {
            position += 1;
            if fits && line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Some(note) = fits.then(|| annotation::read(&line, key)).flatten() else {
                unscored += 1;
                continue;
            };
            if let Some(since) = since {
                let t = note
                    .event_time
                    .as_deref()
                    .and_then(crate::scored::parse_time);
                if t.is_none_or(|t| t < since) {
                    continue;
                }
            }
            let row = Row {
                risk: note.risk,
                score: note.score,
                position,
                note,
            };
            if heap.len() < count {
                heap.push(std::cmp::Reverse(row));
            } else if heap.peek().is_some_and(|min| row > min.0) {
                heap.pop();
                heap.push(std::cmp::Reverse(row));
            }
        }
        Ok(())
    };
    if paths.is_empty() {
        scan(&mut std::io::stdin().lock())?;
    }
    for p in paths {
        let mut f = fs_err::File::open(p)?;
        scan(&mut f)?;
    }
    if unscored > 0 {
        eprintln!(
            "oddity top: {unscored} of {position} lines carry no `{key}` score record (not scored by oddity, not JSON, or over {} MiB) and are not ranked",
            crate::scored::MAX_LINE >> 20
        );
    }
    let mut rows: Vec<Row> = heap.into_iter().map(|r| r.0).collect();
    rows.sort_by(|a, b| b.cmp(a));
    writeln!(
        out,
        "{:>3}  {:>5}  {:<8}  {:<6}  {:<20}  {:<34}  {:<44}  {:<30}  {:<20}  event id",
        "#",
        "risk",
        "severity",
        "score",
        "time",
        "principal",
        "observation",
        "most novel",
        "tactics"
    )?;
    for (i, r) in rows.iter().enumerate() {
        let n = &r.note;
        let entity_len = n.principal.split(' ').count();
        let obs: Vec<&str> = n
            .observation
            .iter()
            .skip(entity_len)
            .map(|(_, v)| v.as_str())
            .collect();
        let m = &n.most_novel;
        let campaign = n
            .campaign
            .as_ref()
            .map(|c| format!("  campaign {}", &c.id[..c.id.len().min(8)]))
            .unwrap_or_default();
        // Every text cell comes from the events: control characters in them (an escape
        // sequence that clears the screen, a carriage return that forges a row) are shown
        // escaped, never sent to the terminal.
        writeln!(
            out,
            "{:>3}  {:>5.1}  {:<8}  {:<6.4}  {:<20}  {:<34}  {:<44}  {:<30}  {:<20}  {}{}{}",
            i + 1,
            r.risk,
            n.severity.name(),
            r.score,
            clip(&printable(n.event_time.as_deref().unwrap_or("-")), 20),
            clip_left(&printable(short_principal(&n.principal)), 34),
            clip(&printable(&obs.join(" ")), 44),
            clip(&printable(&format!("{}={}", m.field, m.value)), 30),
            clip(&n.tactics.join(","), 20),
            printable(n.event_id.as_deref().unwrap_or("-")),
            printable(&campaign),
            if n.cold { "  (warm-up)" } else { "" },
        )?;
    }
    Ok(())
}

/// `s` with its control characters escaped (`\u{1b}`).
fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn clip_left(s: &str, n: usize) -> String {
    let len = s.chars().count();
    if len <= n {
        s.to_owned()
    } else {
        format!("…{}", s.chars().skip(len - n + 1).collect::<String>())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's own files: the messages need no path
mod tests {
    use super::*;

    #[test]
    fn keeps_the_highest_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.jsonl");
        let line = |s: f64, id: &str| {
            let a = Annotation {
                score: s,
                info_content: 1.0,
                novelty: 1.0,
                risk: 0.0,
                severity: annotation::Severity::Info,
                tactics: Vec::new(),
                techniques: Vec::new(),
                probability: 0.5,
                uniqueness: 1.0,
                sequence: 1,
                cold: false,
                principal: "IAMUser arn:aws:iam::1:user/raul".into(),
                observation: vec![
                    ("type".into(), "IAMUser".into()),
                    ("principal".into(), "raul".into()),
                    ("action".into(), format!("A{id}")),
                ],
                most_novel: annotation::ComponentNovelty {
                    index: 2,
                    view: "v".into(),
                    field: "action".into(),
                    value: format!("A{id}"),
                    novelty: 0.9,
                    bits: 3.0,
                },
                views: Vec::new(),
                event_id: Some(id.into()),
                event_time: None,
                campaign: None,
            };
            format!(
                "{{\"novelty\":{}}}\n",
                serde_json::to_string(&a).expect("json")
            )
        };
        let text = [
            line(0.2, "a"),
            "not json\n".into(),
            line(0.9, "b"),
            line(0.5, "c"),
            line(0.95, "d"),
        ]
        .concat();
        std::fs::write(&path, text).expect("write");
        let mut out = Vec::new();
        run(&[path], "novelty", 2, None, &mut out).expect("run");
        let out = String::from_utf8(out).expect("utf-8");
        let rows: Vec<&str> = out.lines().skip(1).collect();
        assert_eq!(rows.len(), 2);
        assert!(
            rows[0].contains(" d") && rows[0].contains("raul") && rows[0].contains("action=Ad"),
            "{out}"
        );
        assert!(rows[1].ends_with(" b"), "{out}");
    }
}
