//! Command-line flags, as parsed; [`crate::settings`] validates them with the configuration file
//! and the environment into typed settings. Nothing else reads these.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// oddity: learns what is normal for every principal in a JSON log stream and scores how novel
/// each event is. Reads JSON lines, CloudTrail delivery files (plain or .gz) and directories of
/// them; writes every event back, annotated.
#[derive(Debug, Parser)]
#[command(
    name = "oddity",
    version,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub score: ScoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score events (what `oddity` does without a subcommand).
    Score(Box<ScoreArgs>),
    /// Show the most novel events of a scored stream as a table.
    Top(TopArgs),
    /// Turn a scored stream into one self-contained HTML report: plots, the most novel events,
    /// campaign timelines and the principals behind them.
    Report(ReportArgs),
    /// The embedded WebAssembly component, for other component hosts.
    Plugin(PluginArgs),
    /// Record an analyst's verdict on an alert; `benign` also suppresses its principal's action.
    Ack(AckArgs),
    /// Past one machine, on NATS JetStream: set up, publish, route by principal, work
    /// partitions, collect (docs/scale-out.md).
    #[command(subcommand)]
    Nats(crate::nats::NatsCommand),
}

/// Flags of `oddity ack`.
#[derive(Debug, Args, Clone)]
pub struct AckArgs {
    /// The alert's `alertId`.
    pub alert_id: String,
    /// `benign` or `malicious`.
    #[arg(long)]
    pub verdict: String,
    /// Who decides (recorded).
    #[arg(long)]
    pub by: String,
    /// Why (recorded).
    #[arg(long)]
    pub reason: String,
    /// The native alerts file the alert is in.
    #[arg(long, value_name = "FILE")]
    pub alerts: PathBuf,
    /// The verdicts file, appended to (one JSON line per verdict).
    #[arg(long, value_name = "FILE", default_value = "verdicts.jsonl")]
    pub verdicts: PathBuf,
    /// For `benign`: the suppression rules file to add a rule to (the one `--suppress` reads).
    #[arg(long, value_name = "FILE")]
    pub suppress: Option<PathBuf>,
    /// For `benign`: how long the rule lasts.
    #[arg(long = "for", value_name = "DURATION", default_value = "30d")]
    pub r#for: String,
}

/// `oddity plugin`.
#[derive(Debug, Args, Clone)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

#[derive(Debug, Subcommand, Clone)]
pub enum PluginCommand {
    /// Write the embedded component to FILE and its WIT contract beside it, as `detector.wit`.
    Export(ExportArgs),
}

/// Flags of `oddity plugin export`.
#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    /// The component file to write (such as `oddity.wasm`).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Flags of `oddity top`.
#[derive(Debug, Args, Clone)]
pub struct TopArgs {
    /// Scored JSON-lines files (from `oddity`); standard input when none.
    pub paths: Vec<PathBuf>,
    /// How many events to show.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub count: usize,
    /// Key that holds the score record.
    #[arg(short = 'k', long, default_value = "novelty")]
    pub key: String,
    /// Only events at or after this event time (RFC 3339, such as `2024-03-05` or
    /// `2024-03-05T08:00:00Z`): leave out a learning period, or look at today.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

/// Flags of `oddity report`.
#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Scored JSON-lines files (from `oddity`, plain or gzip); standard input when none (or `-`).
    pub paths: Vec<PathBuf>,
    /// The HTML file to write (`-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Key that holds the score record.
    #[arg(short = 'k', long, default_value = "novelty")]
    pub key: String,
    /// How many of the most novel events to list.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub top: usize,
    /// How many campaigns (the highest scored) to show as timelines.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub campaigns: usize,
    /// How many principals (those with the highest campaign scores) to summarise.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub principals: usize,
    /// Title of the report.
    #[arg(long, default_value = "oddity report")]
    pub title: String,
    /// Only events at or after this event time (RFC 3339, such as `2024-03-05` or
    /// `2024-03-05T08:00:00Z`): leave out a learning period, or look at today.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// No summary line on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Flags of `oddity score`. Each also exists as a configuration key (in brackets) and as an
/// `ODDITY_` environment variable (`ODDITY_BATCH_SIZE`, `ODDITY_STATE__FILE`...).
#[derive(Debug, Args, Default, Clone)]
pub struct ScoreArgs {
    /// Files or directories to read, in order; standard input when none (or `-`).
    pub paths: Vec<PathBuf>,

    /// TOML configuration file.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Built-in profile name (`cloudtrail`) or a profile TOML file [profile].
    #[arg(short, long, value_name = "NAME|FILE")]
    pub profile: Option<String>,

    /// Restore the model from this snapshot file if it exists, and save it there [state.file].
    #[arg(short, long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Answer a log shipper's protocol on standard output: `mmexternal` (rsyslog's message
    /// modification: one JSON reply per message, `{"msg": "<scored event>"}` or `{}`),
    /// `omprog` (rsyslog's output program with confirmMessages: `OK` at start and per message;
    /// the scored stream goes to -o FILE, appended to).
    #[arg(long, value_enum, value_name = "PROTOCOL")]
    pub reply: Option<Reply>,

    /// Serve the run's counters in the Prometheus text format at http://ADDR/metrics (and
    /// /healthz), such as 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Keep reading the files named as they grow, across rotation (`tail -F`), and the
    /// directories named as files come into them (each new file read once, whole, in name
    /// order, once its size held for two walks 250 ms apart), until stopped (SIGTERM, SIGINT).
    #[arg(short = 'F', long)]
    pub follow: bool,

    /// Read every input file from its start and learn it again, ignoring the state's
    /// checkpoints (by default the events the state learned from a file are skipped).
    #[arg(long)]
    pub reread: bool,

    /// Also save the state after this many events [state.save-every-events].
    #[arg(long, value_name = "N")]
    pub save_every_events: Option<u64>,

    /// Also save the state this often, such as `60s` or `5m` [state.save-every].
    #[arg(long, value_name = "DURATION")]
    pub save_every: Option<String>,

    /// Write scored events to this file instead of standard output, or send each as a syslog
    /// message (RFC 5424 over TCP) to `syslog+tcp://HOST:PORT` [output].
    #[arg(short, long, value_name = "FILE|URL")]
    pub output: Option<PathBuf>,

    /// Also write the events and campaigns that cross the alert thresholds to FILE (appended),
    /// or `-` for standard output (the scored stream then needs `-o FILE`) [alerts.file].
    #[arg(long, value_name = "FILE|-")]
    pub alerts: Option<String>,

    /// The alerts' format: `native` (oddity's JSON), `ecs` (Elastic Common Schema 8.x), `ocsf`
    /// (OCSF 1.2 Detection Finding) or `splunk-hec` (Splunk's HTTP Event Collector envelope)
    /// [alerts.format].
    #[arg(long, value_name = "FORMAT")]
    pub alerts_format: Option<String>,

    /// Keep alerts that match a rule of this TOML file out of the alert stream (rules with a
    /// reason and an expiry; docs/alerts.md) [alerts.suppress].
    #[arg(long, value_name = "FILE")]
    pub suppress: Option<PathBuf>,

    /// Append bad lines (empty, not UTF-8, not JSON, not an object, over --max-line-bytes) to
    /// FILE, one JSON record each with their source and line number, instead of writing them
    /// to the output [bad-lines.policy = "dead-letter", bad-lines.file].
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,

    /// Top-level key that holds the score record in each output event [output-key].
    #[arg(short = 'k', long, value_name = "NAME")]
    pub key: Option<String>,

    /// Events per call into the plugin [batch-size].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,

    /// Longest line, in bytes, that is parsed; longer lines pass through unscored [max-line-bytes].
    #[arg(long, value_name = "BYTES")]
    pub max_line_bytes: Option<usize>,

    /// Load this WebAssembly component instead of the embedded plugin [plugin].
    #[arg(long, value_name = "WASM")]
    pub plugin: Option<PathBuf>,

    /// Memory cap of the plugin, in MiB [sandbox.memory-mib].
    #[arg(long, value_name = "MIB")]
    pub memory_mib: Option<u64>,

    /// Fuel (about one unit per wasm instruction) per plugin call; 0, the default, for none
    /// [sandbox.fuel].
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

    /// Wall-clock time one plugin call may take, such as `10s` (the default for a `--plugin`);
    /// `off` for none (the default for the embedded plugin) [sandbox.deadline].
    #[arg(long, value_name = "DURATION")]
    pub deadline: Option<String>,

    /// No progress and no summary on standard error, only warnings and errors [quiet].
    #[arg(short, long)]
    pub quiet: bool,

    /// More log output on standard error (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Write log lines and the summary to FILE (appended to) instead of standard error. With
    /// --reply and no log file they are dropped: shippers read their child's standard error
    /// as replies.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// The log's format on standard error: `text` for people, `json` (one object per line,
    /// with a timestamp) for machines. The scored events alone go to standard output.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A log shipper's protocol on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reply {
    Mmexternal,
    Omprog,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
