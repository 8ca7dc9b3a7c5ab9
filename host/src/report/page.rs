//! What the report page shows, built from the collected data, and its rendering with minijinja
//! from `template.html` (embedded at build time, HTML auto-escaped; the SVG plots are the only
//! values inserted unescaped).

use std::collections::{HashMap, HashSet};

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use super::collect::{Collected, Column, Kept, Learning, NOVEL, Track, parse_time};
use super::plot::{self, Marker, Metric, Step, XAxis, group_digits};
use crate::cli::ReportArgs;
use crate::scored::short_principal;

const TEMPLATE: &str = include_str!("template.html");
/// Share of scored events that must have a time for the plots to be over time.
const TIMED_SHARE: f64 = 0.99;
/// Campaigns summarised at the top of the page.
const AT_A_GLANCE: usize = 3;
const PLOT_SIZE: (u32, u32) = (1200, 400);
const TIMELINE_SIZE: (u32, u32) = (1100, 220);

#[derive(Debug, Serialize)]
pub struct Page {
    title: String,
    version: &'static str,
    key: String,
    sources: Vec<String>,
    stats: Stats,
    axis: &'static str,
    score_plot: String,
    bits_plot: String,
    learning_plot: String,
    markers: usize,
    glance: Vec<CampaignView>,
    top: Vec<EventRow>,
    campaigns: Vec<CampaignView>,
    principals: Vec<PrincipalView>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Stats {
    lines: String,
    scored: String,
    unscored: String,
    cold: String,
    principals: String,
    campaigns: String,
    first: Option<String>,
    last: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct CampaignRef {
    id: String,
    short: String,
    /// Whether the page has its timeline (then `#campaign-<id>` links to it).
    shown: bool,
    risk: String,
    events: u32,
}

#[derive(Debug, Serialize)]
struct EventRow {
    rank: usize,
    risk: String,
    severity: &'static str,
    tactics: String,
    score: String,
    bits: String,
    time: Option<String>,
    principal: String,
    principal_short: String,
    action: String,
    view: String,
    field: String,
    value: String,
    component_novelty: String,
    cold: bool,
    event_id: Option<String>,
    link: Option<String>,
    campaign: Option<CampaignRef>,
}

#[derive(Debug, Clone, Serialize)]
struct StepRow {
    n: usize,
    time: Option<String>,
    action: String,
    view: String,
    field: String,
    value: String,
    score: String,
    bits: String,
    campaign_score: String,
    strong: bool,
    event_id: Option<String>,
    link: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct CampaignView {
    id: String,
    short: String,
    principal: String,
    principal_short: String,
    events: u32,
    score: String,
    risk: String,
    tactics: String,
    first: String,
    last: String,
    duration: Option<String>,
    actions: Vec<String>,
    timeline: String,
    steps: Vec<StepRow>,
    /// Events of the campaign that the report did not keep.
    missing: u32,
    /// Every kept event of the campaign is from its principal's warm-up: a new principal
    /// learning (or a new principal's burst), not a known one changing.
    warm_up: bool,
}

#[derive(Debug, Serialize)]
struct PrincipalView {
    principal: String,
    short: String,
    events: String,
    novel: String,
    campaigns: u32,
    best_campaign: String,
    highest_score: String,
    first: Option<String>,
    last: Option<String>,
    campaign_refs: Vec<CampaignRef>,
    novel_values: Vec<String>,
}

/// A principal as people name it: the user or role name, and for a role session
/// `session (role)` (IAM Identity Center roles without their `AWSReservedSSO_` wrapping).
fn display_principal(p: &str) -> String {
    let short = short_principal(p);
    let Some((_, rest)) = short.split_once(":assumed-role/") else {
        return short.to_owned();
    };
    let Some((role, session)) = rest.split_once('/') else {
        return rest.to_owned();
    };
    let role = match role.strip_prefix("AWSReservedSSO_") {
        Some(r) => r.rsplit_once('_').map_or(r, |(name, _)| name),
        None => role,
    };
    format!("{session} ({role})")
}

/// A score with enough decimals to tell it from 1: 0.9999, 0.99998, 0.999996.
fn score_text(score: f64) -> String {
    let digits = (-(1.0 - score).max(1e-9).log10() - 1e-6)
        .ceil()
        .clamp(4.0, 8.0) as usize;
    format!("{score:.digits$}")
}

fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// The observation's components after the entity's, as one line.
fn action_text(k: &Kept) -> String {
    let entity = k.note.principal.split(' ').count();
    k.note
        .observation
        .iter()
        .skip(entity)
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join(" · ")
}

fn duration_text(first: &str, last: &str) -> Option<String> {
    let secs = (parse_time(last)? - parse_time(first)?).max(0.0).round() as u64;
    Some(match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    })
}

fn campaign_view(t: &Track, shown: bool) -> anyhow::Result<CampaignView> {
    let r = &t.record;
    let steps: Vec<StepRow> = t
        .stages
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let m = &k.note.most_novel;
            let c = k.note.campaign.as_ref();
            StepRow {
                n: i + 1 + t.dropped as usize,
                time: k.note.event_time.clone(),
                action: c
                    .and_then(|c| c.actions.last().cloned())
                    .unwrap_or_default(),
                view: m.view.clone(),
                field: m.field.clone(),
                value: m.value.clone(),
                score: score_text(k.note.score),
                bits: format!("{:.1}", k.note.novelty),
                campaign_score: format!("{:.1}", c.map_or(0.0, |c| c.score)),
                strong: k.note.score >= 0.999,
                event_id: k.note.event_id.clone(),
                link: k.link.clone(),
            }
        })
        .collect();
    let timeline = if shown {
        let points: Vec<Step> = t
            .stages
            .iter()
            .map(|k| Step {
                time: k.time,
                campaign_score: k.note.campaign.as_ref().map_or(0.0, |c| c.score),
                score: k.note.score,
            })
            .collect();
        plot::timeline(&points, TIMELINE_SIZE)?
    } else {
        String::new()
    };
    Ok(CampaignView {
        id: r.id.clone(),
        short: short_id(&r.id),
        principal: r.principal.clone(),
        principal_short: display_principal(&r.principal),
        events: r.events,
        score: format!("{:.1}", r.score),
        risk: format!("{:.1}", r.risk),
        tactics: r.tactics.join(", "),
        first: r.first.clone(),
        last: r.last.clone(),
        duration: duration_text(&r.first, &r.last),
        actions: r.actions.clone(),
        warm_up: !t.stages.is_empty() && t.stages.iter().all(|k| k.note.cold),
        timeline,
        steps,
        missing: t.dropped,
    })
}

fn campaign_ref(t: &Track, shown: bool) -> CampaignRef {
    CampaignRef {
        id: t.record.id.clone(),
        short: short_id(&t.record.id),
        shown,
        risk: format!("{:.1}", t.record.risk),
        events: t.record.events,
    }
}

/// Lays out the page: picks the campaigns and principals to show and draws the plots.
pub fn build(c: &Collected, args: &ReportArgs, sources: &[String]) -> anyhow::Result<Page> {
    let mut tracks: Vec<&Track> = c.campaigns.values().collect();
    tracks.sort_by(|a, b| {
        b.record
            .risk
            .total_cmp(&a.record.risk)
            .then_with(|| a.record.id.cmp(&b.record.id))
    });
    let shown: HashSet<&str> = tracks
        .iter()
        .take(args.campaigns)
        .map(|t| t.record.id.as_str())
        .collect();
    let campaigns = tracks
        .iter()
        .take(args.campaigns)
        .map(|t| campaign_view(t, true))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // A campaign of one event is that event: the table shows it.
    let glance = campaigns
        .iter()
        .filter(|c| c.events >= 2)
        .take(AT_A_GLANCE)
        .cloned()
        .collect();

    let by_time = c.scored > 0 && c.timed as f64 >= TIMED_SHARE * c.scored as f64;
    let (axis, density) = if by_time {
        (XAxis::Time, &c.by_time)
    } else {
        (XAxis::Position, &c.by_position)
    };
    let x_of = |k: &Kept| match axis {
        XAxis::Time => k.time,
        _ => Some(k.position as f64),
    };
    let mut score_markers = Vec::new();
    let mut bits_markers = Vec::new();
    let mut learning_markers = Vec::new();
    let mut push = |k: &Kept, rank: Option<usize>, in_campaign: bool| {
        let marker = |x: f64, y: f64| Marker {
            x,
            y,
            rank,
            in_campaign,
        };
        // Events held apart from the time plots (far from the rest) are not drawn there.
        if let Some(x) = x_of(k).filter(|&x| axis != XAxis::Time || density.covers(x)) {
            score_markers.push(marker(x, k.note.score));
            bits_markers.push(marker(x, k.note.novelty));
        }
        learning_markers.push(marker(k.note.sequence as f64, k.note.novelty));
    };
    let mut drawn: HashSet<u64> = HashSet::new();
    for t in tracks.iter().take(args.campaigns) {
        for k in &t.stages {
            drawn.insert(k.position);
        }
    }
    // The listed events and every kept one that is novel: never a sample.
    for (i, k) in c.top.iter().enumerate() {
        if (i < args.top || k.note.score >= NOVEL) && !drawn.contains(&k.position) {
            push(k, Some(i + 1), false);
        }
    }
    let ranks: HashMap<u64, usize> = c
        .top
        .iter()
        .enumerate()
        .map(|(i, k)| (k.position, i + 1))
        .collect();
    for t in tracks.iter().take(args.campaigns) {
        for k in &t.stages {
            push(k, ranks.get(&k.position).copied(), true);
        }
    }
    let markers = score_markers.len();
    let columns: Vec<(f64, f64, &Column)> = density
        .columns
        .iter()
        .map(|(k, col)| {
            let (a, b) = density.span(*k);
            (a, b, &**col)
        })
        .collect();
    let score_plot = plot::density(&columns, axis, Metric::Score, &score_markers, PLOT_SIZE)?;
    let bits_plot = plot::density(&columns, axis, Metric::Bits, &bits_markers, PLOT_SIZE)?;
    let columns: Vec<(f64, f64, &Column)> = c
        .learning
        .buckets
        .iter()
        .map(|(k, col)| {
            let (a, b) = Learning::span(*k);
            (a, b, &**col)
        })
        .collect();
    let learning_plot = plot::density(
        &columns,
        XAxis::Sequence,
        Metric::Bits,
        &learning_markers,
        PLOT_SIZE,
    )?;

    let by_id: HashMap<&str, &Track> = tracks.iter().map(|t| (t.record.id.as_str(), *t)).collect();
    let top = c
        .top
        .iter()
        .take(args.top)
        .enumerate()
        .map(|(i, k)| {
            let m = &k.note.most_novel;
            EventRow {
                rank: i + 1,
                risk: format!("{:.1}", k.note.risk),
                severity: k.note.severity.name(),
                tactics: k.note.tactics.join(", "),
                score: score_text(k.note.score),
                bits: format!("{:.1}", k.note.novelty),
                time: k.note.event_time.clone(),
                principal: k.note.principal.clone(),
                principal_short: display_principal(&k.note.principal),
                action: action_text(k),
                view: m.view.clone(),
                field: m.field.clone(),
                value: m.value.clone(),
                component_novelty: format!("{:.2}", m.novelty),
                cold: k.note.cold,
                event_id: k.note.event_id.clone(),
                link: k.link.clone(),
                campaign: k
                    .note
                    .campaign
                    .as_ref()
                    .map(|r| match by_id.get(r.id.as_str()) {
                        Some(t) => campaign_ref(t, shown.contains(r.id.as_str())),
                        None => CampaignRef {
                            id: r.id.clone(),
                            short: short_id(&r.id),
                            shown: false,
                            risk: format!("{:.1}", r.risk),
                            events: r.events,
                        },
                    }),
            }
        })
        .collect();

    let mut principals: Vec<(&String, &super::collect::Principal)> = c.principals.iter().collect();
    principals.sort_by(|a, b| {
        b.1.best_campaign
            .total_cmp(&a.1.best_campaign)
            .then(b.1.highest_score.total_cmp(&a.1.highest_score))
            .then_with(|| a.0.cmp(b.0))
    });
    let principals = principals
        .into_iter()
        .take(args.principals)
        .map(|(name, p)| {
            let theirs: Vec<&&Track> = tracks
                .iter()
                .filter(|t| &t.record.principal == name)
                .collect();
            let mut values: Vec<(f64, String)> = theirs
                .iter()
                .flat_map(|t| &t.stages)
                .map(|k| {
                    let m = &k.note.most_novel;
                    (m.bits, format!("{} = {}", m.field, m.value))
                })
                .collect();
            values.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut seen = HashSet::new();
            let novel_values = values
                .into_iter()
                .filter(|(_, v)| seen.insert(v.clone()))
                .map(|(_, v)| v)
                .take(6)
                .collect();
            PrincipalView {
                principal: name.clone(),
                short: display_principal(name),
                events: group_digits(p.events),
                novel: group_digits(p.novel),
                campaigns: p.campaigns,
                best_campaign: format!("{:.1}", p.best_campaign),
                highest_score: score_text(p.highest_score),
                first: p.first.clone(),
                last: p.last.clone(),
                campaign_refs: theirs
                    .iter()
                    .take(5)
                    .map(|t| campaign_ref(t, shown.contains(t.record.id.as_str())))
                    .collect(),
                novel_values,
            }
        })
        .collect();

    let mut notes = Vec::new();
    if !by_time && c.scored > 0 {
        notes.push(format!(
            "{} of {} scored events have a readable time, so the plots are over position in the stream.",
            group_digits(c.timed),
            group_digits(c.scored)
        ));
    } else if c.timed < c.scored {
        notes.push(format!(
            "{} scored events without a readable time are left out of the plots.",
            group_digits(c.scored - c.timed)
        ));
    }
    if by_time && !c.far_times.is_empty() {
        let when = |x: f64| {
            jiff::Timestamp::from_millisecond((x * 1000.0) as i64).map_or_else(
                |_| format!("{x} s"),
                |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            )
        };
        let lo = c.far_times.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = c
            .far_times
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        notes.push(format!(
            "{} scored events with times far from all the others ({}) are left out of the time plots (they are in the tables): a forged time or a source with a broken clock?",
            group_digits(c.far_times.len() as u64),
            if lo == hi {
                when(lo)
            } else {
                format!("{} to {}", when(lo), when(hi))
            }
        ));
    }
    if c.before_since > 0 {
        notes.push(format!(
            "{} scored events before --since {} (or without a readable time) are left out.",
            group_digits(c.before_since),
            args.since.as_deref().unwrap_or_default()
        ));
    }
    if c.too_long > 0 {
        notes.push(format!(
            "{} lines longer than {} MiB were skipped.",
            group_digits(c.too_long),
            crate::scored::MAX_LINE >> 20
        ));
    }
    if c.campaigns_dropped > 0 {
        notes.push(format!(
            "{} low-scored campaigns were not followed, to bound memory.",
            group_digits(c.campaigns_dropped)
        ));
    }
    if c.principals_untracked > 0 {
        notes.push(format!(
            "{} events of principals beyond the first {} are not in the principal summaries.",
            group_digits(c.principals_untracked),
            group_digits(super::collect::MAX_PRINCIPALS as u64)
        ));
    }
    Ok(Page {
        title: args.title.clone(),
        version: env!("CARGO_PKG_VERSION"),
        key: args.key.clone(),
        sources: sources.to_vec(),
        stats: Stats {
            lines: group_digits(c.lines),
            scored: group_digits(c.scored),
            unscored: group_digits(c.lines - c.scored),
            cold: group_digits(c.cold),
            principals: group_digits(c.principals.len() as u64),
            campaigns: group_digits(c.campaigns.len() as u64 + c.campaigns_dropped),
            first: c.first_time.as_ref().map(|(_, t)| t.clone()),
            last: c.last_time.as_ref().map(|(_, t)| t.clone()),
        },
        axis: match axis {
            XAxis::Time => "event time",
            _ => "position in the stream",
        },
        score_plot,
        bits_plot,
        learning_plot,
        markers,
        glance,
        top,
        campaigns,
        principals,
        notes,
    })
}

/// Renders the page to HTML.
pub fn render(page: &Page) -> anyhow::Result<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| anyhow::anyhow!("the report template: {e:#}"))?;
    let template = env
        .get_template("report.html")
        .map_err(|e| anyhow::anyhow!("the report template: {e:#}"))?;
    template
        .render(Value::from(Serde(page)))
        .map_err(|e| anyhow::anyhow!("rendering the report: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::{Annotation, Campaign, ComponentNovelty};
    use crate::report::collect::Collector;

    fn note(i: u64, score: f64, campaign: Option<Campaign>) -> Annotation {
        Annotation {
            score,
            info_content: 5.0,
            novelty: score * 20.0,
            risk: score * 20.0,
            severity: crate::annotation::Severity::Info,
            tactics: Vec::new(),
            techniques: Vec::new(),
            probability: 0.03,
            uniqueness: 1.0,
            sequence: i,
            cold: false,
            principal: "IAMUser arn:aws:iam::1:user/<raul>".into(),
            observation: vec![
                ("type".into(), "IAMUser".into()),
                ("principal".into(), "arn:aws:iam::1:user/<raul>".into()),
                ("action".into(), format!("Action{i}")),
            ],
            most_novel: ComponentNovelty {
                index: 2,
                view: "action".into(),
                field: "action".into(),
                value: format!("Action{i}"),
                novelty: 0.5,
                bits: 3.0,
            },
            views: Vec::new(),
            event_id: Some(format!("id-{i}")),
            event_time: Some(format!("2024-03-04T12:{:02}:00Z", i % 60)),
            campaign,
        }
    }

    /// The HTML page of collected data, with small limits.
    fn page_of(collected: Collected) -> String {
        let args = ReportArgs {
            paths: Vec::new(),
            output: "r.html".into(),
            key: "novelty".into(),
            top: 5,
            campaigns: 10,
            principals: 10,
            title: "t".into(),
            since: None,
            quiet: true,
        };
        let page = build(&collected, &args, &["s.jsonl".to_owned()]).expect("page");
        render(&page).expect("html")
    }

    #[test]
    fn scores_keep_their_last_nine() {
        assert_eq!(score_text(0.5), "0.5000");
        assert_eq!(score_text(0.9999), "0.9999");
        assert_eq!(score_text(0.99998), "0.99998");
        assert_eq!(score_text(0.999_996_2), "0.999996");
    }

    #[test]
    fn principals_as_people_name_them() {
        assert_eq!(
            display_principal("IAMUser arn:aws:iam::1:user/raul"),
            "raul"
        );
        assert_eq!(
            display_principal(
                "AssumedRole arn:aws:sts::1:assumed-role/AWSReservedSSO_Dev_34418e44855f45b9/w@x.com"
            ),
            "w@x.com (Dev)"
        );
        assert_eq!(
            display_principal("AssumedRole arn:aws:iam::1:role/orders"),
            "orders"
        );
    }

    #[test]
    fn a_campaign_of_warm_up_events_is_marked_so() {
        let mut c = Collector::new(5, None);
        for (id, cold) in [("aaaaaaaaaaaaaaaa", true), ("bbbbbbbbbbbbbbbb", false)] {
            for i in 0..3u64 {
                let mut n = note(i, 0.999, None);
                n.cold = cold;
                n.principal = format!("IAMUser arn:aws:iam::1:user/{id}");
                n.campaign = Some(Campaign {
                    id: id.into(),
                    principal: n.principal.clone(),
                    events: i as u32 + 1,
                    first: "2024-03-04T12:00:00Z".into(),
                    last: format!("2024-03-04T12:{i:02}:00Z"),
                    score: 20.0 + i as f64,
                    risk: 20.0 + i as f64,
                    tactics: Vec::new(),
                    actions: vec![format!("Action{i}")],
                });
                c.add(b"{}", n);
            }
        }
        let html = page_of(c.finish());
        let tag = "every event of this campaign is from the principal's warm-up";
        // At a glance and in the campaign's own section, for the new principal's only.
        assert_eq!(html.matches(tag).count(), 2, "{html}");
        let warm = html
            .find("id=\"campaign-bbbbbbbbbbbbbbbb\"")
            .expect("section");
        let cold = html
            .find("id=\"campaign-aaaaaaaaaaaaaaaa\"")
            .expect("section");
        let tagged = html.rfind(tag).expect("tag");
        assert!(
            tagged > cold && (tagged < warm || warm < cold),
            "the tag is the new principal's"
        );
    }

    #[test]
    fn renders_a_page_with_every_section() {
        let mut c = Collector::new(5, None);
        for i in 0..300u64 {
            let campaign = (i >= 290).then(|| Campaign {
                id: "abcdef0123456789".into(),
                principal: "IAMUser arn:aws:iam::1:user/<raul>".into(),
                events: (i - 289) as u32,
                first: "2024-03-04T12:50:00Z".into(),
                last: format!("2024-03-04T12:{:02}:00Z", i % 60),
                score: (i - 289) as f64 * 10.0,
                risk: (i - 289) as f64 * 10.0,
                tactics: Vec::new(),
                actions: vec![format!("Action{i}")],
            });
            let score = if i >= 290 {
                0.995
            } else {
                (i % 97) as f64 / 100.0
            };
            let line = br#"{"eventSource":"ec2.amazonaws.com","awsRegion":"eu-west-1"}"#;
            c.add(line, note(i, score, campaign));
        }
        c.unscored();
        let collected = c.finish();
        let html = page_of(collected);
        for want in [
            "id=\"top-events\"",
            "id=\"campaign-abcdef0123456789\"",
            "class=\"timeline\"",
            "<svg",
            "data-event-id=\"id-290\"",
            // Attribute values are HTML-escaped, `/` included.
            "console.aws.amazon.com&#x2f;cloudtrail&#x2f;home?region=eu-west-1#&#x2f;events&#x2f;id-290",
            "&lt;raul&gt;",
        ] {
            assert!(html.contains(want), "{want} missing");
        }
        assert!(!html.contains("<raul>"), "text is escaped");
        for fetch in ["src=", "<link", "@import", "url("] {
            assert!(!html.contains(fetch), "nothing to fetch: {fetch}");
        }
    }
}
