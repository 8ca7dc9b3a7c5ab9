//! Criterion benchmarks of the engine, natively: judging batches of lines (`judge`, the one
//! scoring call), its two stages apart (`extract`, the reader's; `judge` of the observations,
//! the scorer's), the typed records (`score_lines`) and snapshots. `cargo bench -p oddity-engine`.
//!
//! Input: 20,000 events of the repository's CloudTrail generator (seed 7), in batches of 256.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oddity_cloudtrail_gen::{GenConfig, generate};
use oddity_engine::{Batch, Engine};

fn batches(n: usize) -> Vec<Vec<u8>> {
    let cfg = GenConfig {
        days: 2,
        ..GenConfig::default()
    };
    let lines: Vec<String> = generate(&cfg).take(n).map(|e| e.json).collect();
    lines
        .chunks(256)
        .map(|c| (c.join("\n") + "\n").into_bytes())
        .collect()
}

fn engine(c: &mut Criterion) {
    let input = batches(20_000);
    let events = input
        .iter()
        .map(|b| b.iter().filter(|&&x| x == b'\n').count())
        .sum::<usize>() as u64;
    let mut group = c.benchmark_group("engine");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(events));
    group.bench_function("judge lines (fresh model, 20k events)", |b| {
        b.iter(|| {
            let mut e = Engine::new("").expect("config");
            input
                .iter()
                .map(|batch| e.judge(Batch::Lines(batch)).expect("lines").notes.len())
                .sum::<usize>()
        });
    });
    // The two stages of the staged path, each alone: where one event's time goes.
    group.bench_function("extract (20k events)", |b| {
        let mut e = Engine::new("").expect("config");
        b.iter(|| {
            input
                .iter()
                .map(|batch| e.extract(batch).len())
                .sum::<usize>()
        });
    });
    let observations: Vec<Vec<u8>> = {
        let mut e = Engine::new("").expect("config");
        input.iter().map(|batch| e.extract(batch)).collect()
    };
    group.bench_function("judge observations (fresh model, 20k events)", |b| {
        b.iter(|| {
            let mut e = Engine::new("").expect("config");
            observations
                .iter()
                .map(|o| e.judge(Batch::Observations(o)).expect("fits").notes.len())
                .sum::<usize>()
        });
    });
    group.bench_function("score_lines (fresh model, 20k events)", |b| {
        b.iter(|| {
            let mut e = Engine::new("").expect("config");
            input
                .iter()
                .map(|batch| e.score_lines(batch).len())
                .sum::<usize>()
        });
    });
    group.finish();

    let mut trained = Engine::new("").expect("config");
    for batch in &input {
        let _ = trained.judge(Batch::Lines(batch));
    }
    let bytes = trained.snapshot();
    let mut group = c.benchmark_group("snapshot");
    group
        .sample_size(20)
        .throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function(format!("encode ({} nodes)", trained.stats().nodes), |b| {
        b.iter(|| trained.snapshot().len())
    });
    group.bench_function(format!("decode ({} nodes)", trained.stats().nodes), |b| {
        b.iter(|| Engine::restore("", &bytes).expect("restore").stats().nodes)
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
