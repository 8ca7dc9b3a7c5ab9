//! Evaluation harness: how well oddity's engine ranks attacks, against baselines, on generated
//! and real CloudTrail streams.
//!
//! Every stream is run once; each event is scored, then learned, by oddity (the engine as a
//! native library, [`oddity_engine::Engine::score_line`]) and by each baseline
//! ([`baselines`]), in stream order. The first 10 % of each stream is warm-up: scored and
//! learned, not measured. Metrics ([`metrics`]) count ties half; [`report`] computes and
//! renders them.
//!
//! - [`streams`]: the generated organisation ([`oddity_cloudtrail_gen`]), Stratus Red Team
//!   detonations injected into generated background, the invictus-ir capture, OTRF.
//! - [`fields`]: the attributes the baselines read, normalised like oddity's.
//! - [`harness`]: one pass over a stream.
//! - [`partition`]: oddity partitioned by principal over independent engines, as on NATS.

pub mod baselines;
pub mod fields;
pub mod harness;
pub mod metrics;
pub mod partition;
pub mod report;
pub mod streams;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use oddity_cloudtrail_gen::GenConfig;

use report::StreamReport;
use streams::{Origin, StreamSpec};

/// The first seed of the generated streams.
pub const FIRST_SEED: u64 = 7;
/// Seed of the Stratus background.
pub const STRATUS_BACKGROUND_SEED: u64 = 7;

/// The repository's real data (`tests/data`, shared with the integration tests).
pub fn default_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// What a run evaluates beyond the default streams: other seeds and organisation shapes, for
/// held-out checks (streams no parameter was chosen on).
#[derive(Debug, Clone, Default)]
pub struct Variant {
    /// The Stratus background's seed (default [`STRATUS_BACKGROUND_SEED`]).
    pub stratus_seed: Option<u64>,
    /// Organisation shape of the generated streams and the Stratus background.
    pub days: Option<u32>,
    pub humans: Option<u32>,
    pub roles: Option<u32>,
    /// Scenarios injected into the generated streams (empty: all of them).
    pub scenarios: Vec<String>,
    /// How many times each scenario is injected.
    pub attack_repeats: Option<u32>,
    /// People who join in the middle of the stream.
    pub new_engineers: Option<u32>,
    /// Share of people who are IAM users (the rest sign in through IAM Identity Center).
    pub iam_user_share: Option<f64>,
}

impl Variant {
    /// `cfg` with this variant's organisation shape.
    pub fn shape(&self, mut cfg: GenConfig) -> GenConfig {
        cfg.days = self.days.unwrap_or(cfg.days);
        cfg.humans = self.humans.unwrap_or(cfg.humans);
        cfg.roles = self.roles.unwrap_or(cfg.roles);
        cfg.only.clone_from(&self.scenarios);
        cfg.attack_repeats = self.attack_repeats.unwrap_or(cfg.attack_repeats);
        cfg.new_engineers = self.new_engineers.unwrap_or(cfg.new_engineers);
        cfg.iam_user_share = self.iam_user_share.unwrap_or(cfg.iam_user_share);
        cfg
    }
}

/// The generator configuration of the generated streams and the Stratus background.
pub fn gen_config(quick: bool, seed: u64) -> GenConfig {
    if quick {
        GenConfig {
            seed,
            days: 3,
            humans: 8,
            roles: 5,
            ..GenConfig::default()
        }
    } else {
        GenConfig {
            seed,
            ..GenConfig::default()
        }
    }
}

/// The streams of a run, and notes on those skipped for missing data.
pub fn plan(
    quick: bool,
    seeds: &[u64],
    data: &Path,
    variant: &Variant,
) -> (Vec<StreamSpec>, Vec<String>) {
    let mut specs: Vec<StreamSpec> = seeds
        .iter()
        .map(|&s| StreamSpec::Generated(variant.shape(gen_config(quick, s))))
        .collect();
    let mut skipped = Vec::new();
    let stratus = data.join("stratus-red-team_detonation_logs");
    if stratus.is_dir() {
        let mut background = variant.shape(gen_config(
            quick,
            variant.stratus_seed.unwrap_or(STRATUS_BACKGROUND_SEED),
        ));
        background.attacks = false;
        for origin in Origin::ALL {
            specs.push(StreamSpec::Stratus {
                background: background.clone(),
                dir: stratus.clone(),
                origin,
            });
        }
    } else {
        skipped.push(format!("stratus: {} not found", stratus.display()));
    }
    let invictus = data.join("invictus-ir_aws_dataset");
    if invictus.join("labels_derived.csv").is_file() {
        specs.push(StreamSpec::Invictus { dir: invictus });
    } else {
        skipped.push(format!("invictus: {} not found", invictus.display()));
    }
    let otrf = data.join("otrf_security_datasets/ec2_proxy_s3_exfiltration_2020-09-14011940.json");
    if otrf.is_file() {
        specs.push(StreamSpec::Otrf { file: otrf });
    } else {
        skipped.push(format!("otrf: {} not found", otrf.display()));
    }
    (specs, skipped)
}

/// Engine configuration text from a TOML file: an engine configuration as
/// [`oddity_engine::Engine::new`] takes it, or an `oddity` host configuration (host-only keys
/// are dropped; `profile = "path"` is read and the file's `[engine]`/`[campaign]` keys are
/// overlaid, as the host does).
pub fn engine_config_from_file(path: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut doc: toml::Table = text
        .parse()
        .with_context(|| format!("{}: not TOML", path.display()))?;
    for host_only in [
        "output-key",
        "batch-size",
        "max-line-bytes",
        "plugin",
        "cache-dir",
        "state",
        "sandbox",
    ] {
        doc.remove(host_only);
    }
    if let Some(toml::Value::String(p)) = doc.get("profile") {
        let candidate = path.parent().unwrap_or(Path::new(".")).join(p);
        let file = [PathBuf::from(p), candidate]
            .into_iter()
            .find(|c| c.is_file() && p.contains(['/', '.']));
        if let Some(file) = file {
            let ptext = std::fs::read_to_string(&file)
                .with_context(|| format!("reading profile {}", file.display()))?;
            let mut profile: toml::Table = ptext
                .parse()
                .with_context(|| format!("profile {}: not TOML", file.display()))?;
            for name in ["engine", "campaign"] {
                if let Some(toml::Value::Table(overlay)) = doc.remove(name) {
                    let entry = profile
                        .entry(name)
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    if let toml::Value::Table(t) = entry {
                        t.extend(overlay);
                    }
                }
            }
            doc = profile;
        }
    }
    Ok(toml::to_string(&doc)?)
}

/// File name of a stream's dump: its name with non-alphanumerics as `-`.
pub fn dump_name(stream: &str) -> String {
    let slug: String = stream
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut out = String::new();
    for part in slug.split('-').filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(part);
    }
    format!("{out}.csv")
}

fn write_dump(dir: &Path, scored: &harness::Scored) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(dump_name(&scored.name));
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    scored
        .write_csv(&mut out, report::warm_up_of(scored.rows.len()))
        .and_then(|()| std::io::Write::flush(&mut out))
        .with_context(|| format!("writing {}", path.display()))
}

/// Runs the streams on `threads` workers, oddity partitioned by principal as `how` says
/// ([`harness::run_partitioned`]); reports come back in `specs` order. `progress` is called as
/// each stream finishes.
pub fn run_all(
    specs: &[StreamSpec],
    config: &str,
    how: partition::Partitioning,
    threads: usize,
    dump: Option<&Path>,
    progress: &(dyn Fn(usize, &Result<StreamReport>) + Sync),
) -> Vec<Result<StreamReport>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<StreamReport>>>> =
        Mutex::new((0..specs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, specs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = specs.get(i) else { break };
                    let result = spec
                        .open()
                        .and_then(|s| harness::run_partitioned(s, config, how))
                        .and_then(|scored| {
                            if let Some(dir) = dump {
                                write_dump(dir, &scored)?;
                            }
                            Ok(report::evaluate(&scored))
                        })
                        .with_context(|| spec.name());
                    progress(i, &result);
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("a worker thread failed"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_shapes_the_generated_streams_and_the_stratus_background() {
        let variant = Variant {
            stratus_seed: Some(11),
            days: Some(4),
            humans: Some(150),
            roles: None,
            scenarios: vec!["insider".to_owned()],
            attack_repeats: Some(3),
            new_engineers: Some(4),
            iam_user_share: Some(0.9),
        };
        // A data directory with the Stratus logs only (the rest is skipped).
        let dir = std::env::temp_dir().join(format!("oddity-eval-variant-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("stratus-red-team_detonation_logs")).expect("mkdir");
        let (specs, _) = plan(false, &[23], &dir, &variant);
        let _ = std::fs::remove_dir_all(&dir);
        let configs: Vec<&GenConfig> = specs
            .iter()
            .filter_map(|s| match s {
                StreamSpec::Generated(c) | StreamSpec::Stratus { background: c, .. } => Some(c),
                _ => None,
            })
            .collect();
        let shapes: Vec<(u64, u32, u32, u32, bool)> = configs
            .iter()
            .map(|c| (c.seed, c.days, c.humans, c.roles, c.attacks))
            .collect();
        let roles = GenConfig::default().roles;
        assert_eq!(
            shapes,
            [
                (23, 4, 150, roles, true),
                (11, 4, 150, roles, false),
                (11, 4, 150, roles, false),
                (11, 4, 150, roles, false)
            ]
        );
        assert!(
            configs
                .iter()
                .all(|c| c.only == ["insider"] && c.attack_repeats == 3)
        );
        assert!(
            configs
                .iter()
                .all(|c| c.new_engineers == 4 && c.iam_user_share == 0.9)
        );
    }
}
