//! The generator: builds the organisation and its actors from the seed, plans benign changes
//! and attacks, then simulates hour by hour and releases events in time order.
//!
//! Each hour every actor appends its events (sessions may spill into later hours); the pending
//! events are sorted by `(time, creation order)` and those before the end of the hour are
//! released. Actors never emit before the start of the current hour, so the output is ordered.

use std::collections::{BTreeSet, VecDeque};

use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};

use crate::agents::{Agent, Os, attacker};
use crate::api::Catalog;
use crate::ci::Ci;
use crate::dist::between;
use crate::humans::{Human, Kind};
use crate::ids;
use crate::org::{ALL_REGIONS, Org, Team, VPS_OCTETS};
use crate::payload::Focus;
use crate::record::{Call, Caller, Emitter, Fail, Ident, Tls};
use crate::scenarios::{
    EXFIL_CHAIN, IAM_PERSISTENCE, INSIDER, INSIDER_BACKDOOR, INSIDER_SNAPSHOT, INSIDER_TRUST,
    ROLE_CREDENTIAL_THEFT, SCENARIOS, SLOW_INSIDER, Scenario, Tool, UNTUNED, Victim,
};
use crate::services::Services;
use crate::timefmt::{DAY, HOUR, weekday};
use crate::workloads::{Host, NEW_ROLE, TEMPLATES, Workload};
use crate::world::World;
use crate::{Event, GenConfig, Label, Rng};

#[derive(Debug, Clone, Copy)]
enum Target {
    Human(usize),
    Workload(usize),
}

#[derive(Debug)]
struct Attack {
    scenario: &'static Scenario,
    start: i64,
    target: Target,
    done: bool,
}

/// The event iterator.
#[derive(Debug)]
pub(crate) struct Stream {
    org: Org,
    cat: Catalog,
    rng: Rng,
    world: World,
    humans: Vec<Human>,
    workloads: Vec<Workload>,
    ci: Ci,
    services: Services,
    attacks: Vec<Attack>,
    hour: i64,
    pending: Vec<Event>,
    ready: VecDeque<Event>,
    seq: u64,
}

/// Midnight UTC of the first weekday at or after `t`.
fn weekday_midnight(t: i64) -> i64 {
    let mut d = t.div_euclid(DAY) * DAY;
    while weekday(d + 12 * HOUR, 0) >= 5 {
        d += DAY;
    }
    d
}

/// Head count per team for `n` people (largest remainder, every team staffed when n ≥ 5).
fn staff(n: u32) -> Vec<Team> {
    let n_f = f64::from(n);
    let mut counts: Vec<(Team, u32, f64)> = Team::ALL
        .iter()
        .map(|&t| {
            let exact = n_f * t.weight();
            (t, exact.floor() as u32, exact - exact.floor())
        })
        .collect();
    let left = n - counts.iter().map(|c| c.1).sum::<u32>();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| counts[b].2.total_cmp(&counts[a].2).then(a.cmp(&b)));
    for &i in order.iter().cycle().take(left as usize) {
        counts[i].1 += 1;
    }
    if n >= 5 {
        for i in 0..counts.len() {
            if counts[i].1 == 0 {
                let max = (0..counts.len()).max_by_key(|&j| counts[j].1).unwrap_or(0);
                counts[max].1 -= 1;
                counts[i].1 += 1;
            }
        }
    }
    counts
        .iter()
        .flat_map(|&(t, c, _)| std::iter::repeat_n(t, c as usize))
        .collect()
}

impl Stream {
    pub(crate) fn new(cfg: &GenConfig) -> Self {
        let mut rng = Rng::seed_from_u64(cfg.seed);
        let mut org = Org::new(&mut rng);
        let cat = Catalog::new();
        let start = cfg.start_unix.div_euclid(DAY) * DAY;
        let days = cfg.days.max(1);
        let end = start + i64::from(days) * DAY;
        let span = end - start;
        let at = |f: f64| start + (span as f64 * f) as i64;

        let bump_t = weekday_midnight(at(0.55 + 0.1 * rng.random::<f64>()));
        let new_service_day = weekday_midnight(at(0.45 + 0.1 * rng.random::<f64>()));
        let new_service_t = new_service_day + 14 * HOUR - i64::from(org.offices[0].tz_min) * 60
            + rng.random_range(0..HOUR);

        // People.
        let mut taken = BTreeSet::new();
        let mut teams = staff(cfg.humans);
        teams.shuffle(&mut rng);
        let mut humans = Vec::new();
        let mut iam_count = 0;
        for (i, &team) in teams.iter().enumerate() {
            let left = teams.len() - i;
            let need_iam = iam_count < 3 && left <= 3 - iam_count && team != Team::Security;
            let iam = need_iam || rng.random::<f64>() < cfg.iam_user_share;
            iam_count += usize::from(iam);
            humans.push(Human::new(
                &mut org, &cat, &mut rng, team, iam, 0, 0, &mut taken,
            ));
        }
        for _ in 0..cfg.new_engineers {
            let day = weekday_midnight(at(0.3 + 0.15 * rng.random::<f64>()));
            let team = if rng.random::<f64>() < 0.6 {
                Team::Dev
            } else {
                Team::Data
            };
            let mut h = Human::new(&mut org, &cat, &mut rng, team, false, 1, 1, &mut taken);
            let join = day + ((h.start_h + 0.5) * HOUR as f64) as i64 - i64::from(h.tz_min) * 60;
            h.set_join(join, join + 7 * DAY);
            humans.push(h);
        }

        // Workloads.
        let mut workloads = Vec::new();
        for i in 0..cfg.roles as usize {
            let t = &TEMPLATES[i % TEMPLATES.len()];
            let suffix = if i >= TEMPLATES.len() {
                format!("-{}", i / TEMPLATES.len() + 1)
            } else {
                String::new()
            };
            workloads.push(Workload::new(
                &mut org, &cat, &mut rng, t, &suffix, start, 0,
            ));
        }
        let ci = Ci::new(&mut org, &cat, &mut rng, new_service_t);
        if new_service_t < end && cfg.roles > 0 {
            let s = new_service_t + rng.random_range(40 * 60..90 * 60);
            workloads.push(Workload::new(
                &mut org,
                &cat,
                &mut rng,
                &NEW_ROLE,
                "",
                s,
                s + 2 * DAY,
            ));
        }
        let services = Services::new(&org, &cat, &mut rng, start);

        // Attacks.
        let mut attacks = Vec::new();
        if cfg.attacks {
            for _ in 0..cfg.attack_repeats.max(1) {
                let mut used = BTreeSet::new();
                for sc in chosen(cfg) {
                    let t = at(0.2 + 0.6 * rng.random::<f64>());
                    let Some(target) =
                        pick_victim(sc.victim, &humans, &workloads, &mut used, &mut rng)
                    else {
                        continue;
                    };
                    let t = match (sc.victim, target) {
                        (Victim::Insider, Target::Human(i)) => {
                            working_time(&humans[i], t, &mut rng)
                        }
                        _ => t,
                    };
                    attacks.push(Attack {
                        scenario: sc,
                        start: t,
                        target,
                        done: false,
                    });
                }
            }
        }
        attacks.sort_by_key(|a| a.start);

        Stream {
            world: World::new(&cat, end + i64::from(cfg.tail_days) * DAY, bump_t),
            org,
            cat,
            rng,
            humans,
            workloads,
            ci,
            services,
            attacks,
            hour: start,
            pending: Vec::new(),
            ready: VecDeque::new(),
            seq: 0,
        }
    }

    fn step(&mut self) {
        let h0 = self.hour;
        let w = &self.world;
        let mut em = Emitter {
            org: &self.org,
            cat: &self.cat,
            rng: &mut self.rng,
            out: &mut self.pending,
            seq: &mut self.seq,
        };
        for h in &mut self.humans {
            h.hour(&mut em, w, h0);
        }
        for wl in &mut self.workloads {
            wl.hour(&mut em, w, h0);
        }
        self.ci.hour(&mut em, w, h0);
        self.services.hour(&mut em, w, h0);
        for a in &mut self.attacks {
            if !a.done && a.start < h0 + HOUR {
                a.done = true;
                run_attack(&mut em, w, a, &mut self.humans, &mut self.workloads);
            }
        }
        self.hour += HOUR;
        let cut = if self.hour >= self.world.end {
            i64::MAX
        } else {
            self.hour
        };
        self.pending.sort_by_key(|e| (e.time, e.seq));
        let n = self.pending.partition_point(|e| e.time < cut);
        self.ready.extend(self.pending.drain(..n));
    }
}

impl Iterator for Stream {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            if self.hour >= self.world.end {
                return None;
            }
            self.step();
        }
    }
}

/// The scenarios to inject: every default one, or those `cfg.only` names (untuned ones
/// included), in table order.
fn chosen(cfg: &GenConfig) -> impl Iterator<Item = &'static Scenario> + '_ {
    let named = |sc: &&Scenario| cfg.only.iter().any(|n| n == sc.name);
    let defaults = SCENARIOS
        .iter()
        .filter(move |sc| cfg.only.is_empty() || named(sc));
    defaults.chain(UNTUNED.iter().filter(named))
}

fn pick_victim(
    v: Victim,
    humans: &[Human],
    workloads: &[Workload],
    used: &mut BTreeSet<usize>,
    rng: &mut Rng,
) -> Option<Target> {
    if v == Victim::InstanceRole {
        return workloads
            .iter()
            .position(|w| matches!(w.host, Host::Ec2(_)))
            .map(Target::Workload);
    }
    let known = |h: &Human| h.join == 0;
    let fits = |h: &Human| match v {
        Victim::HumanKey => matches!(h.kind, Kind::Iam { .. }) && h.team != Team::Security,
        Victim::HumanSso => {
            matches!(h.kind, Kind::Sso { .. }) && matches!(h.team, Team::Dev | Team::Data)
        }
        _ => matches!(h.team, Team::Dev | Team::Data | Team::Sre),
    };
    for tier in 0..3 {
        let c: Vec<usize> = (0..humans.len())
            .filter(|&i| {
                let h = &humans[i];
                known(h) && (tier == 2 || fits(h)) && (tier >= 1 || !used.contains(&i))
            })
            .collect();
        if !c.is_empty() {
            let i = c[rng.random_range(0..c.len())];
            used.insert(i);
            return Some(Target::Human(i));
        }
    }
    None
}

/// A time during `h`'s working hours on a weekday at or after `t`.
fn working_time(h: &Human, t: i64, rng: &mut Rng) -> i64 {
    let off = i64::from(h.tz_min) * 60;
    let mut local_day = (t + off).div_euclid(DAY) * DAY;
    while weekday(local_day + 12 * HOUR, 0) >= 5 {
        local_day += DAY;
    }
    let len = (h.end_h - h.start_h - 2.5).max(0.5);
    let hour = h.start_h + 1.0 + rng.random::<f64>() * len;
    local_day + (hour * HOUR as f64) as i64 - off
}

fn tool_agent(tool: Tool, os: Os) -> Agent {
    match tool {
        Tool::OtherOsCli if os == Os::Linux => Agent::Cli(attacker::CLI_WINDOWS.into()),
        Tool::OtherOsCli | Tool::VpsCli | Tool::Usual => Agent::Cli(attacker::CLI_VPS.into()),
        Tool::Pacu => Agent::plain(attacker::PACU),
    }
}

const BACKDOOR_USERS: &[&str] = &[
    "svc-backup-sync",
    "aws-support-ops",
    "ci-deployer",
    "monitoring-agent",
    "datasync-admin",
];

/// Aims the attack at one of the organisation's volumes, to be shared with an outside account.
fn share_a_volume(focus: &mut Focus, org: &Org, rng: &mut Rng) {
    let v = org.volumes[rng.random_range(0..org.volumes.len())]
        .0
        .clone();
    focus.volume = Some(v);
    focus.foreign_account = Some(org.foreign_account(rng));
}

/// Names the IAM user the attack creates and the access key it gets.
fn make_a_backdoor_user(focus: &mut Focus, rng: &mut Rng) {
    focus.user = Some(BACKDOOR_USERS[rng.random_range(0..BACKDOOR_USERS.len())].to_owned());
    focus.access_key = Some(ids::access_key(rng, "AKIA"));
}

fn run_attack(
    em: &mut Emitter<'_>,
    w: &World,
    a: &Attack,
    humans: &mut [Human],
    workloads: &mut [Workload],
) {
    let sc = a.scenario;
    let t0 = a.start;
    let org = em.org;
    let foreign_ip = org.foreign_ip(em.rng, VPS_OCTETS);
    let attacker_caller = |ident, os| Caller {
        ident,
        ip: foreign_ip.as_str().into(),
        agent: tool_agent(sc.tool, os),
        region: org.region,
        console: false,
        vpce: None,
        tls: Tls::V13,
        deny_rate: 0.0,
        throttle_rate: 0.0,
    };
    let caller = match (sc.victim, a.target) {
        (Victim::Insider, Target::Human(i)) => humans[i].usual_caller(em, w, t0),
        (_, Target::Human(i)) => {
            let ident = humans[i].api_ident(org, em.rng, t0);
            attacker_caller(ident, humans[i].os)
        }
        (_, Target::Workload(i)) => {
            let ident = workloads[i].current_ident(em, w, t0);
            attacker_caller(ident, Os::Linux)
        }
    };

    let mut focus = Focus {
        sequential: true,
        ..Focus::default()
    };
    match sc.name {
        INSIDER_SNAPSHOT => share_a_volume(&mut focus, org, em.rng),
        INSIDER_BACKDOOR => make_a_backdoor_user(&mut focus, em.rng),
        INSIDER_TRUST => {
            let r = org.roles[em.rng.random_range(0..org.roles.len())].clone();
            focus.role = Some(r);
            focus.foreign_account = Some(org.foreign_account(em.rng));
        }
        EXFIL_CHAIN => {
            share_a_volume(&mut focus, org, em.rng);
            focus.sequential = false;
        }
        IAM_PERSISTENCE => {
            make_a_backdoor_user(&mut focus, em.rng);
            focus.role = Some(
                org.roles
                    .iter()
                    .find(|r| r.starts_with("ebs-backup"))
                    .cloned()
                    .unwrap_or_else(|| "OrganizationAccountAccessRole".to_owned()),
            );
            focus.foreign_account = Some(org.foreign_account(em.rng));
        }
        INSIDER | SLOW_INSIDER => {
            let mut s: Vec<usize> = (0..org.secrets.len()).collect();
            s.shuffle(em.rng);
            focus.secrets = s;
            let targets: Vec<usize> = (0..org.buckets.len())
                .filter(|&b| org.buckets[b].sensitive)
                .collect();
            focus.buckets = vec![targets[em.rng.random_range(0..targets.len())]];
        }
        ROLE_CREDENTIAL_THEFT => {
            focus.buckets = ["prod-app-assets", "app-uploads", "customer-exports"]
                .iter()
                .filter_map(|b| org.bucket_index(b))
                .collect();
            focus.sequential = false;
        }
        _ => {}
    }
    let backdoor = focus
        .user
        .as_ref()
        .zip(focus.access_key.as_ref())
        .map(|(u, k)| Caller {
            ident: Ident::iam_user(&org.account, u, &ids::unique_id(em.rng, "AIDA"), k, None),
            ..caller.clone()
        });

    let create_snapshot = em.cat.id("ec2:CreateSnapshot");
    let mut t = t0;
    for (si, step) in sc.steps.iter().enumerate() {
        let mut acts = em.cat.ids(step.actions);
        if step.shuffle {
            acts.shuffle(em.rng);
        }
        let n = between(em.rng, step.count.0, step.count.1);
        for k in 0..n {
            t += i64::from(between(em.rng, step.gap.0, step.gap.1));
            let api = acts[k as usize % acts.len()];
            if api == create_snapshot && focus.snapshot.is_none() {
                focus.snapshot = Some(ids::ec2_id(em.rng, "snap"));
            }
            let who = match (&backdoor, step.as_backdoor) {
                (Some(b), true) => b,
                _ => &caller,
            };
            let label = Label {
                scenario: Some(sc.name),
                step: si as u32 + 1,
                benign_novelty: None,
            };
            let mut call = Call::new(t, api, who, &focus, label);
            call.fail = if step.deny > 0.0 {
                Fail::DeniedWith(step.deny)
            } else {
                Fail::Never
            };
            call.nth = k;
            if step.any_region && !em.cat.get(api).svc.global && em.rng.random::<f64>() < 0.7 {
                call.region = Some(ALL_REGIONS[em.rng.random_range(0..ALL_REGIONS.len())]);
            }
            em.emit(call);
        }
    }
}
