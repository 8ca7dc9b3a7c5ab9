//! Development aid: scores a JSON-lines file natively and prints the most novel events.
//!
//! `cargo run --release -p oddity-engine --example rank -- EVENTS.jsonl [LABELS] [TOP]`
//! where LABELS has one label per line ("attack..." lines count as positives for the AUC).

use std::io::BufRead;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let events = std::fs::File::open(&args[1])?;
    let labels: Option<Vec<String>> = args.get(2).filter(|a| !a.is_empty()).map(|p| {
        std::fs::read_to_string(p)
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    });
    let top: usize = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(30);
    let mut engine = oddity_engine::Engine::new("")?;
    let mut rows = Vec::new();
    let start = std::time::Instant::now();
    for (i, line) in std::io::BufReader::new(events).lines().enumerate() {
        let line = line?;
        match engine.score_line(line.as_bytes()) {
            Ok(r) => rows.push((i, r)),
            Err(e) => eprintln!("line {}: {e}", i + 1),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{} events in {secs:.3}s ({:.0}/s); {:?}",
        rows.len(),
        rows.len() as f64 / secs,
        engine.stats()
    );
    let label = |i: usize| {
        labels
            .as_ref()
            .and_then(|l| l.get(i))
            .map_or("", String::as_str)
    };
    let mut sorted: Vec<_> = rows.iter().collect();
    sorted.sort_by(|a, b| b.1.novelty.total_cmp(&a.1.novelty));
    for (i, r) in sorted.iter().take(top) {
        println!(
            "{:>5} {:.4} {:6.1}b {} {:<14} {:<45} {:<38} {}={} {}",
            i + 1,
            r.score,
            r.novelty,
            if r.cold { "C" } else { " " },
            label(*i),
            r.principal
                .chars()
                .rev()
                .take(45)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>(),
            r.observation[2..]
                .join(" ")
                .chars()
                .take(38)
                .collect::<String>(),
            r.most_novel.field,
            r.most_novel.value,
            r.campaign
                .as_ref()
                .map(|c| format!("campaign {} #{}", &format!("{:x}", c.id)[..6], c.events))
                .unwrap_or_default()
        );
    }
    if labels.is_some() {
        // ROC-AUC of novelty for attack vs everything else, with ties counted half.
        let mut pos = Vec::new();
        let mut neg = Vec::new();
        for (i, r) in &rows {
            if label(*i).starts_with("attack") && label(*i) != "attack_setup" {
                pos.push(r.novelty)
            } else {
                neg.push(r.novelty)
            }
        }
        neg.sort_by(f64::total_cmp);
        let mut auc = 0.0;
        for p in &pos {
            let lo = neg.partition_point(|x| x < p);
            let hi = neg.partition_point(|x| x <= p);
            auc += lo as f64 + 0.5 * (hi - lo) as f64;
        }
        auc /= (pos.len() * neg.len()).max(1) as f64;
        let n = rows.len();
        let mut by: Vec<_> = rows
            .iter()
            .map(|(i, r)| {
                (
                    r.novelty,
                    label(*i).starts_with("attack") && label(*i) != "attack_setup",
                )
            })
            .collect();
        by.sort_by(|a, b| b.0.total_cmp(&a.0));
        let at = |k: usize| by.iter().take(k).filter(|x| x.1).count();
        eprintln!(
            "AUC {auc:.4}  pos {} neg {}  attacks in top1% {} top5% {} top10% {}",
            pos.len(),
            neg.len(),
            at(n / 100),
            at(n / 20),
            at(n / 10)
        );
    }
    Ok(())
}
