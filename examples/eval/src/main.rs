//! `oddity-eval`: measures oddity's detection quality against baselines on generated and real
//! CloudTrail streams and prints one table per stream plus a summary.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use oddity_engine::Engine;
use oddity_eval::baselines::AVF_UNSEEN;
use oddity_eval::partition::Partitioning;
use oddity_eval::report::{self, Steps, TOP_LARGE, TOP_SMALL, WARM_UP};
use oddity_eval::streams::{INJECT_AFTER, MIN_VICTIM_EVENTS};
use oddity_eval::{FIRST_SEED, STRATUS_BACKGROUND_SEED, default_data_dir, gen_config, plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StepTables {
    /// Generated streams only.
    Generated,
    All,
    None,
}

/// Detection quality of oddity's engine against baselines (AVF, per-principal first-seen,
/// Elastic-style rare-by-user) on generated streams, Stratus Red Team detonations injected into
/// generated background, the invictus-ir capture and the OTRF dataset.
#[derive(Debug, Parser)]
#[command(name = "oddity-eval", version)]
struct Args {
    /// Small streams (a 3-day organisation of 8 people) for a fast check.
    #[arg(long)]
    quick: bool,
    /// Number of generated streams (seeds 7, 8, ...); default 3, 1 with --quick.
    #[arg(long, value_name = "N")]
    seeds: Option<usize>,
    /// First seed of the generated streams (held-out checks: seeds no parameter was chosen on).
    #[arg(long, value_name = "SEED", default_value_t = FIRST_SEED)]
    first_seed: u64,
    /// Seed of the Stratus detonations' generated background.
    #[arg(long, value_name = "SEED", default_value_t = STRATUS_BACKGROUND_SEED)]
    stratus_seed: u64,
    /// Days of the generated streams and the Stratus background (default 14, 3 with --quick).
    #[arg(long, value_name = "N")]
    days: Option<u32>,
    /// People in the generated organisations (default 25, 8 with --quick).
    #[arg(long, value_name = "N")]
    humans: Option<u32>,
    /// Workload roles in the generated organisations (default 15, 5 with --quick).
    #[arg(long, value_name = "N")]
    roles: Option<u32>,
    /// Inject only these scenarios into the generated streams (comma-separated, as
    /// `cloudtrail-gen --scenarios`): `insider,slow-insider` is an organisation whose only
    /// attacks are insiders.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    scenarios: Vec<String>,
    /// How many times each scenario is injected into a generated stream (default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    attack_repeats: Option<u32>,
    /// People who join in the middle of each generated stream and the Stratus background
    /// (default 1).
    #[arg(long, value_name = "N")]
    new_engineers: Option<u32>,
    /// Share of people who are IAM users, the rest signing in through IAM Identity Center
    /// (default 0.4). The Stratus victims are IAM users: a background needs some.
    #[arg(long, value_name = "SHARE", value_parser = share)]
    iam_user_share: Option<f64>,
    /// Engine configuration (TOML): an engine configuration or an oddity host configuration.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Machine-readable output (one JSON document) instead of tables.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Markdown tables.
    #[arg(long)]
    markdown: bool,
    /// Which streams get a per-step table.
    #[arg(long, value_enum, default_value = "generated")]
    steps: StepTables,
    /// Directory of the real datasets.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Also write one CSV per stream into DIR: every event's truth, oddity's verdict (principal,
    /// most novel field and value, campaign) and every detector's score.
    #[arg(long, value_name = "DIR")]
    dump: Option<PathBuf>,
    /// Partitions of oddity by principal, as the NATS scale-out runs it: each event is scored by
    /// the fresh engine of partition xxh3_64(principal) % N, which sees only its partition's
    /// events (the baselines are not partitioned). 1 is one process.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    partitions: u16,
    /// With --partitions: events between two exchanges of population knowledge between the
    /// partitions' engines (`oddity nats setup --share-every`, whose default this is); 0 keeps
    /// it partition-local.
    #[arg(long, value_name = "EVENTS", default_value_t = 1000)]
    share_every: usize,
    /// Worker threads (default: available parallelism).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

/// A share between 0 and 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a share between 0 and 1")),
    }
}

/// The report header's line on a partitioned run.
fn partitioned_note(how: Partitioning) -> String {
    let Partitioning {
        partitions,
        share_every,
    } = how;
    let sharing = if share_every > 0 {
        format!(
            "population knowledge shared every {share_every} events (each engine shares what it learned into the population and merges the others' shares of the marker before)"
        )
    } else {
        "population knowledge partition-local".to_owned()
    };
    format!(
        "partitions: {partitions}: oddity (and oddity-risk) partitioned by principal as on NATS: each event scored by the fresh engine of partition xxh3_64(principal) % {partitions} (a line that is not an event: of its bytes), each engine seeing only its partition's events in stream order; {sharing}; metrics on the scores merged by index; the baselines are not partitioned (one pass over the whole stream, the reference columns)"
    )
}

fn main() -> Result<()> {
    let args = Args::parse();
    oddity_cloudtrail_gen::check_scenarios(&args.scenarios).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let seeds_n = args.seeds.unwrap_or(if args.quick { 1 } else { 3 });
    if seeds_n == 0 && args.seeds.is_some() {
        eprintln!("oddity-eval: --seeds 0: no generated streams");
    }
    let seeds: Vec<u64> = (0..seeds_n as u64).map(|i| args.first_seed + i).collect();
    let variant = oddity_eval::Variant {
        stratus_seed: Some(args.stratus_seed),
        days: args.days,
        humans: args.humans,
        roles: args.roles,
        scenarios: args.scenarios.clone(),
        attack_repeats: args.attack_repeats,
        new_engineers: args.new_engineers,
        iam_user_share: args.iam_user_share,
    };
    let data = args.data.clone().unwrap_or_else(default_data_dir);
    let data = data.canonicalize().unwrap_or(data);
    let (config, config_origin) = match &args.config {
        Some(p) => (
            oddity_eval::engine_config_from_file(p)?,
            format!("{}", p.display()),
        ),
        None => (
            String::new(),
            "built-in CloudTrail profile, defaults".to_owned(),
        ),
    };
    let engine = Engine::new(&config).context("engine configuration")?;
    let fingerprint = engine.fingerprint().to_owned();
    let warm_up = engine.settings().engine.warm_up;
    drop(engine);
    let (specs, skipped) = plan(args.quick, &seeds, &data, &variant);
    if specs.is_empty() {
        bail!("nothing to run");
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = if argv.is_empty() {
        "cargo run --release -p oddity-eval".to_owned()
    } else {
        format!("cargo run --release -p oddity-eval -- {}", argv.join(" "))
    };
    let template = variant.shape(gen_config(args.quick, args.first_seed));
    let mut parameters = vec![
        format!(
            "generated: seeds {}; days {}, humans {}, roles {}, attack repeats {}, new engineers {}, IAM-user share {} ({})",
            seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            template.days,
            template.humans,
            template.roles,
            template.attack_repeats,
            template.new_engineers,
            template.iam_user_share,
            if template.only.is_empty() {
                format!("all {} scenarios", oddity_cloudtrail_gen::SCENARIOS.len())
            } else {
                format!("scenarios {}", template.only.join(", "))
            }
        ),
        format!(
            "stratus: background seed {} (same size, attacks off); one technique per slot after {:.0} % of the stream; victims: IAM users with >= {MIN_VICTIM_EVENTS} events before, round robin",
            args.stratus_seed,
            INJECT_AFTER * 100.0
        ),
        format!(
            "protocol: online (score, then learn) in stream order; first {:.0} % of each stream is warm-up (not measured); top 0.1 % / 1 % = ceil({TOP_SMALL} n) / ceil({TOP_LARGE} n) of the evaluated events",
            WARM_UP * 100.0
        ),
        "ties: ROC-AUC by Mann-Whitney with mid-ranks; AP with one threshold per distinct score (scikit-learn's definition); top-k counts, precision and recall are expectations over random order within ties; ranks are mid-ranks; detected = best rank <= k".to_owned(),
        format!(
            "oddity: {config_origin} (fingerprint {fingerprint}, principal warm-up {warm_up}); ranked by score, ties by novelty"
        ),
        format!(
            "baselines (same normalised fields as oddity, via oddity_engine's arn-role, ip-prefix and ua-family normalisers): avf = log attribute value frequency over principal, eventSource, eventName, errorCode, network, UA family, unseen = {AVF_UNSEEN}; first-seen = new (principal, value) pairs over eventName, eventSource, network, UA family + rarity tie-break; rare-by-user = Elastic rare eventName by principal, 15-min buckets, judged after 50 events, rare = <= 2 buckets"
        ),
        format!("data: {}", data.display()),
    ];
    let how = Partitioning {
        partitions: usize::from(args.partitions),
        share_every: args.share_every,
    };
    if how.partitions > 1 {
        parameters.push(partitioned_note(how));
    }

    let progress = |i: usize, r: &Result<report::StreamReport>| match r {
        Ok(r) => eprintln!(
            "oddity-eval: [{}/{}] {}: {} events in {:.1} s",
            i + 1,
            specs.len(),
            r.name,
            r.events,
            r.seconds
        ),
        Err(e) => eprintln!("oddity-eval: [{}/{}] failed: {e:#}", i + 1, specs.len()),
    };
    let results = oddity_eval::run_all(
        &specs,
        &config,
        how,
        threads,
        args.dump.as_deref(),
        &progress,
    );
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(r) => reports.push(r),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    let summary = report::summarize(&reports);
    let total = started.elapsed().as_secs_f64();

    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = serde_json::json!({
            "command": command,
            "parameters": parameters,
            "skipped": skipped,
            "failures": failures,
            "seconds": total,
            "streams": reports,
            "summary": summary,
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        let md = args.markdown;
        let steps = match args.steps {
            StepTables::Generated => Steps::Generated,
            StepTables::All => Steps::All,
            StepTables::None => Steps::None,
        };
        let bullet = if md { "- " } else { "  " };
        writeln!(out, "{}oddity-eval", if md { "## " } else { "" })?;
        writeln!(out, "{bullet}command: {command}")?;
        for p in &parameters {
            writeln!(out, "{bullet}{p}")?;
        }
        for s in &skipped {
            writeln!(out, "{bullet}skipped {s}")?;
        }
        writeln!(out)?;
        for r in &reports {
            write!(out, "{}", report::render_stream(r, md, steps))?;
        }
        write!(out, "{}", report::render_summary(&summary, md))?;
        for f in &failures {
            writeln!(out, "{bullet}FAILED: {f}")?;
        }
        writeln!(
            out,
            "{bullet}{} streams, {} events, {:.1} s on {threads} threads",
            reports.len(),
            reports.iter().map(|r| r.events).sum::<usize>(),
            total
        )?;
    }
    if !failures.is_empty() {
        std::process::exit(2);
    }
    Ok(())
}
