//! Deterministic generator of organisation-scale AWS CloudTrail streams with injected,
//! labelled attack scenarios, for testing and benchmarking oddity.
//!
//! One organisation (a main account plus a few internal ones) is simulated hour by hour:
//! people (IAM and SSO users) with team-specific habits, working hours and networks; workload
//! roles with rotating sessions; a GitHub Actions deploy role running Terraform; AWS services
//! acting in the account. Benign novelty (a new joiner, a new service role, a fleet-wide CLI
//! upgrade, new addresses, rarely used services, CI touching a new service) is labelled with
//! [`Label::benign_novelty`]; attacks (see [`SCENARIOS`]) with [`Label::scenario`] and
//! [`Label::step`]. Labels never appear in the JSON.
//!
//! Everything is drawn from one ChaCha RNG seeded with [`GenConfig::seed`], nothing reads the
//! clock, and no output decision depends on hash-map order: a seed reproduces the stream byte
//! for byte. Events come out in non-decreasing `eventTime` order from an iterator that holds
//! only about an hour of events at a time.
//!
//! ```
//! use oddity_cloudtrail_gen::{GenConfig, generate};
//!
//! let cfg = GenConfig { days: 1, humans: 5, roles: 4, ..GenConfig::default() };
//! let first = generate(&cfg).next().expect("a day has events");
//! let record: serde_json::Value = serde_json::from_str(&first.json).expect("valid JSON");
//! assert_eq!(record["eventVersion"], "1.08");
//! ```

mod agents;
mod api;
mod ci;
mod dist;
mod humans;
mod ids;
mod org;
mod payload;
mod record;
mod scenarios;
mod services;
mod stream;
mod timefmt;
mod workloads;
mod world;

use std::sync::Arc;

pub use ci::CI_NEW_SERVICE;
pub use humans::{NEW_ENGINEER, NEW_IP_SAME_SUBNET, RARE_SERVICE, TRAVEL_IP, UA_VERSION_BUMP};
pub use scenarios::{
    DISCOVERY_BURST, EXFIL_CHAIN, IAM_PERSISTENCE, INSIDER, INSIDER_BACKDOOR, INSIDER_COVER,
    INSIDER_SNAPSHOT, INSIDER_TRUST, LOGGING_SABOTAGE, ROLE_CREDENTIAL_THEFT, SLOW_INSIDER,
};
pub use workloads::NEW_SERVICE_ROLE;

/// The RNG behind everything.
pub(crate) type Rng = rand_chacha::ChaCha12Rng;

/// Names of all attack scenarios, in injection-table order.
pub const SCENARIOS: &[&str] = &[
    EXFIL_CHAIN,
    DISCOVERY_BURST,
    IAM_PERSISTENCE,
    LOGGING_SABOTAGE,
    INSIDER,
    SLOW_INSIDER,
    ROLE_CREDENTIAL_THEFT,
];

/// Scenarios injected only when named in [`GenConfig::only`]: written after the defaults
/// were chosen, never tuned on.
pub const UNTUNED_SCENARIOS: &[&str] = &[
    INSIDER_SNAPSHOT,
    INSIDER_BACKDOOR,
    INSIDER_TRUST,
    INSIDER_COVER,
];

/// Refuses a scenario name in neither [`SCENARIOS`] nor [`UNTUNED_SCENARIOS`], listing the
/// known ones.
pub fn check_scenarios(names: &[String]) -> Result<(), String> {
    let known = || SCENARIOS.iter().chain(UNTUNED_SCENARIOS);
    match names.iter().find(|n| !known().any(|k| k == n)) {
        Some(unknown) => Err(format!(
            "unknown scenario {unknown:?} (known: {})",
            known().copied().collect::<Vec<_>>().join(", ")
        )),
        None => Ok(()),
    }
}

/// Names of all benign-novelty labels.
pub const BENIGN_NOVELTIES: &[&str] = &[
    NEW_ENGINEER,
    NEW_SERVICE_ROLE,
    UA_VERSION_BUMP,
    NEW_IP_SAME_SUBNET,
    TRAVEL_IP,
    RARE_SERVICE,
    CI_NEW_SERVICE,
];

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Seed of the one RNG; the same seed gives the same bytes.
    pub seed: u64,
    /// Length of the stream in days.
    pub days: u32,
    /// People in the organisation at the start (new joiners come on top).
    pub humans: u32,
    /// Workload roles (the CI role and AWS service roles come on top).
    pub roles: u32,
    /// Inject the attack scenarios.
    pub attacks: bool,
    /// Inject only these scenarios (names from [`SCENARIOS`] and [`UNTUNED_SCENARIOS`]); empty
    /// means all of [`SCENARIOS`].
    pub only: Vec<String>,
    /// How many times each scenario is injected (at different times).
    pub attack_repeats: u32,
    /// People who join in the middle of the stream.
    pub new_engineers: u32,
    /// Share of people who are IAM users (the rest sign in through IAM Identity Center).
    pub iam_user_share: f64,
    /// First second of the stream, Unix time (midnight UTC). Default: Monday 2024-03-04.
    pub start_unix: i64,
    /// Days of ordinary background appended after `days`; attacks and planned changes are
    /// placed within `days` only. Lets a consumer that stops after N events run past its
    /// estimate without losing anything planned.
    pub tail_days: u32,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 7,
            days: 14,
            humans: 25,
            roles: 15,
            attacks: true,
            only: Vec::new(),
            attack_repeats: 1,
            new_engineers: 1,
            iam_user_share: 0.4,
            start_unix: timefmt::days_from_civil(2024, 3, 4) * timefmt::DAY,
            tail_days: 0,
        }
    }
}

impl GenConfig {
    /// Rough number of events a day of this configuration produces (weekday/weekend average).
    pub fn estimated_events_per_day(&self) -> f64 {
        let templates = workloads::TEMPLATES;
        let roles: f64 = (0..self.roles as usize)
            .map(|i| workloads::expected_per_day(&templates[i % templates.len()]))
            .sum();
        let new_role = if self.roles > 0 {
            workloads::expected_per_day(&workloads::NEW_ROLE)
        } else {
            0.0
        };
        // People average ~78 events a day over a week; CI and AWS services ~900.
        let estimate =
            f64::from(self.humans + self.new_engineers) * 78.0 + roles + new_role + 900.0;
        // Err on the high side: the caller's slack then only ever adds background.
        estimate * 1.05
    }

    /// Days needed for about `events` events (with some slack, so a generator stopped after
    /// `events` has passed every injected attack).
    pub fn days_for_events(&self, events: u64) -> u32 {
        let days = (events as f64 / self.estimated_events_per_day() * 1.1).ceil();
        days.clamp(1.0, 100_000.0) as u32
    }
}

/// Ground truth of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Label {
    /// The attack scenario this event belongs to; `None` for benign events.
    pub scenario: Option<&'static str>,
    /// 1-based step of the scenario (0 for benign events).
    pub step: u32,
    /// Why a benign event may look new (`None` for ordinary events and attacks).
    pub benign_novelty: Option<&'static str>,
}

/// One CloudTrail record and its label.
#[derive(Debug, Clone)]
pub struct Event {
    /// The record as one line of JSON, without a trailing newline.
    pub json: String,
    /// Ground truth, never part of `json`.
    pub label: Label,
    time: i64,
    seq: u64,
    id: u128,
    principal: Arc<str>,
}

impl Event {
    /// `eventTime` in Unix seconds.
    pub fn unix_time(&self) -> i64 {
        self.time
    }

    /// `eventTime` as in the record (`2024-03-04T09:15:02Z`).
    pub fn event_time(&self) -> String {
        timefmt::rfc3339(self.time)
    }

    /// `eventID` as in the record.
    pub fn event_id(&self) -> String {
        ids::uuid_from(self.id)
    }

    /// The acting principal: the ARN in `userIdentity` (the service for `AWSService`, the
    /// subject for web identities, the e-mail for SAML users).
    pub fn principal(&self) -> &str {
        &self.principal
    }
}

/// The stream for `cfg`: CloudTrail records in non-decreasing `eventTime` order.
///
/// Lazy: it holds only the events of the hour being generated (plus sessions spilling over),
/// so it can produce millions of events in constant memory.
pub fn generate(cfg: &GenConfig) -> impl Iterator<Item = Event> + use<> {
    stream::Stream::new(cfg)
}
