//! The report's plots, drawn with plotters into SVG text that the page embeds inline.
//!
//! - [`density`]: every event as a density (a 2-D histogram, log-scaled shades) over event time
//!   or stream position, the median and 99th-percentile lines of each column, and the most
//!   novel events and the campaign events as points on top. On raw novelty (bits) the median
//!   line is the learning curve: high while the engine learns, falling as it knows the
//!   principals; on score (drawn as `-log10(1 - score)`, so 0.99 and 0.999 are one unit apart)
//!   the novel events stand out at the top.
//!   The same drawn over the principal's event number (log scale) is the learning curve of each
//!   principal at once: its first events are novel, then novelty falls as oddity learns it.
//! - [`timeline`]: one campaign's events in order over time, with the campaign's cumulative
//!   score (bits) climbing at each step.

use plotters::prelude::*;

use super::collect::{BITS_ROWS, BITS_TOP, Column, SCORE_ROWS, SCORE_TOP};

/// What the x axis shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// Event time, in seconds since the epoch.
    Time,
    /// Position of the line in the stream.
    Position,
    /// The principal's event number (`sequence`), on a log scale.
    Sequence,
}

/// What the y axis shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Score,
    Bits,
}

/// One event drawn as a point.
#[derive(Debug, Clone, Copy)]
pub struct Marker {
    pub x: f64,
    /// Score (for [`Metric::Score`]) or raw novelty in bits.
    pub y: f64,
    /// Its rank among the most novel events (labelled when small).
    pub rank: Option<usize>,
    pub in_campaign: bool,
}

/// Ranks labelled on the plot.
const LABELLED: usize = 10;

const RED: RGBColor = RGBColor(200, 35, 35);
const ORANGE: RGBColor = RGBColor(235, 135, 20);
const INK: RGBColor = RGBColor(40, 40, 40);
const MEDIAN: RGBColor = RGBColor(20, 20, 20);
const P99: RGBColor = RGBColor(110, 60, 160);
const LIGHT: RGBColor = RGBColor(226, 233, 245);
const DARK: RGBColor = RGBColor(25, 65, 135);

fn shade(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    RGBColor(
        mix(LIGHT.0, DARK.0),
        mix(LIGHT.1, DARK.1),
        mix(LIGHT.2, DARK.2),
    )
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a plot: {e}")
}

/// Formats an x value for axis labels; `span` is the whole axis's width.
pub fn x_label(axis: XAxis, x: f64, span: f64) -> String {
    match axis {
        XAxis::Position => group_digits(x.round().max(0.0) as u64),
        XAxis::Sequence => group_digits(x.round().max(0.0) as u64),
        XAxis::Time => {
            let Ok(t) = jiff::Timestamp::from_millisecond((x * 1000.0) as i64) else {
                return String::new();
            };
            let format = if span <= 86_400.0 {
                "%H:%M"
            } else if span <= 60.0 * 86_400.0 {
                "%m-%d %H:%M"
            } else {
                "%Y-%m-%d"
            };
            t.strftime(format).to_string()
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Where x values are drawn: event time as hours (days, for long spans) since midnight UTC
/// of the first day, so that the axis's round numbers are round hours; positions as they are.
#[derive(Debug, Clone, Copy)]
struct Scale {
    base: f64,
    unit: f64,
}

impl Scale {
    fn new(axis: XAxis, x0: f64, x1: f64) -> Scale {
        match axis {
            XAxis::Position | XAxis::Sequence => Scale {
                base: 0.0,
                unit: 1.0,
            },
            XAxis::Time => Scale {
                base: (x0 / 86_400.0).floor() * 86_400.0,
                // Round numbers of hours for up to two days, then of days (and half days).
                unit: if x1 - x0 <= 2.0 * 86_400.0 {
                    3_600.0
                } else {
                    86_400.0
                },
            },
        }
    }

    fn to(self, axis: XAxis, x: f64) -> f64 {
        match axis {
            XAxis::Sequence => x.max(1.0).log10(),
            _ => (x - self.base) / self.unit,
        }
    }

    fn back(self, axis: XAxis, v: f64) -> f64 {
        match axis {
            XAxis::Sequence => 10f64.powf(v),
            _ => self.base + v * self.unit,
        }
    }
}

/// The y value drawn for a score or bits.
fn plotted(metric: Metric, y: f64) -> f64 {
    match metric {
        Metric::Score => super::collect::score_y(y),
        Metric::Bits => y,
    }
}

fn row_height(metric: Metric) -> f64 {
    match metric {
        Metric::Score => SCORE_TOP / SCORE_ROWS as f64,
        Metric::Bits => BITS_TOP / BITS_ROWS as f64,
    }
}

/// Fewest events behind one point of the quantile lines: narrow columns of a short stream are
/// pooled with their neighbours so that the lines show a trend, not noise. On the learning
/// curve the first buckets are small by nature (one event per principal), so less is pooled.
fn quantile_pool(axis: XAxis, total: u64) -> u32 {
    let (most, share) = match axis {
        XAxis::Sequence => (100, 200),
        _ => (400, 40),
    };
    (total / share).clamp(1, most) as u32
}

/// The y value at quantile `q` of a column's rows (row centres).
fn quantile(rows: &[u32], total: u32, q: f64, height: f64) -> f64 {
    let target = (f64::from(total) * q).ceil().max(1.0);
    let mut seen = 0.0;
    for (i, &n) in rows.iter().enumerate() {
        seen += f64::from(n);
        if seen >= target {
            return (i as f64 + 0.5) * height;
        }
    }
    (rows.len() as f64 - 0.5) * height
}

/// The density plot of every event with the kept events on top, as SVG text. `columns` are
/// the histogram's columns with the x range each covers, in order.
pub fn density(
    columns: &[(f64, f64, &Column)],
    axis: XAxis,
    metric: Metric,
    markers: &[Marker],
    size: (u32, u32),
) -> anyhow::Result<String> {
    let height = row_height(metric);
    let rows_of = |c: &Column| -> Vec<u32> {
        match metric {
            Metric::Score => c.score.to_vec(),
            Metric::Bits => c.bits.to_vec(),
        }
    };
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut y1: f64 = 1.0;
    let mut max_count = 1u32;
    for &(a, b, c) in columns {
        x0 = x0.min(a);
        x1 = x1.max(b);
        let rows = rows_of(c);
        if let Some(top) = rows.iter().rposition(|&n| n > 0) {
            y1 = y1.max((top + 1) as f64 * height);
        }
        max_count = max_count.max(rows.iter().copied().max().unwrap_or(0));
    }
    for m in markers {
        x0 = x0.min(m.x);
        x1 = x1.max(m.x);
        y1 = y1.max(plotted(metric, m.y));
    }
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y1 = y1 * 1.06 + height;
    let span = x1 - x0;
    let scale = Scale::new(axis, x0, x1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(48)
            .x_label_area_size(48)
            .y_label_area_size(76)
            .build_cartesian_2d(scale.to(axis, x0)..scale.to(axis, x1), 0.0..y1)
            .map_err(err)?;
        let x_fmt = |x: &f64| match axis {
            // Powers of ten only: the axis is log10 of the event number.
            XAxis::Sequence if (*x - x.round()).abs() > 1e-6 => String::new(),
            _ => x_label(axis, scale.back(axis, *x), span),
        };
        let y_fmt = |y: &f64| match metric {
            Metric::Bits => format!("{y:.0}"),
            // Whole numbers of nines only: 0.9, 0.99, 0.999...
            Metric::Score if (*y - y.round()).abs() > 1e-6 => String::new(),
            Metric::Score => {
                let nines = y.round().max(0.0) as usize;
                format!("{:.nines$}", 1.0 - 10f64.powf(-y.round()))
            }
        };
        chart
            .configure_mesh()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(RGBColor(0, 0, 0).mix(0.08))
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_desc(match axis {
                XAxis::Time => "event time (UTC)",
                XAxis::Position => "position in the stream",
                XAxis::Sequence => "the principal's event number (log scale)",
            })
            .y_desc(match metric {
                Metric::Score => "score",
                Metric::Bits => "raw novelty (bits)",
            })
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .map_err(err)?;

        let log_max = f64::from(max_count).ln_1p();
        let mut cells = Vec::new();
        for &(a, b, c) in columns {
            for (i, &n) in rows_of(c).iter().enumerate() {
                if n > 0 {
                    let t = 0.15 + 0.85 * f64::from(n).ln_1p() / log_max;
                    cells.push(Rectangle::new(
                        [
                            (scale.to(axis, a), i as f64 * height),
                            (scale.to(axis, b), (i + 1) as f64 * height),
                        ],
                        shade(t).filled(),
                    ));
                }
            }
        }
        chart.draw_series(cells).map_err(err)?;
        let total: u64 = columns.iter().map(|(_, _, c)| u64::from(c.events)).sum();
        let pool = quantile_pool(axis, total);
        // The middle of a pooled range, as drawn (geometric on the log axis).
        let middle = |a: f64, b: f64| match axis {
            XAxis::Sequence => (a * b).sqrt(),
            _ => (a + b) / 2.0,
        };
        let (mut medians, mut p99s) = (Vec::new(), Vec::new());
        let mut group: Option<(f64, f64, u32, Vec<u32>)> = None;
        for &(a, b, c) in columns {
            let rows = rows_of(c);
            let g = group.get_or_insert_with(|| (a, b, 0, vec![0; rows.len()]));
            g.1 = b;
            g.2 += c.events;
            for (sum, n) in g.3.iter_mut().zip(&rows) {
                *sum += n;
            }
            if g.2 >= pool {
                let mid = scale.to(axis, middle(g.0, g.1));
                medians.push((mid, quantile(&g.3, g.2, 0.5, height)));
                p99s.push((mid, quantile(&g.3, g.2, 0.99, height)));
                group = None;
            }
        }
        if let Some(g) = group.filter(|g| g.2 > 0) {
            let mid = scale.to(axis, middle(g.0, g.1));
            medians.push((mid, quantile(&g.3, g.2, 0.5, height)));
            p99s.push((mid, quantile(&g.3, g.2, 0.99, height)));
        }
        chart
            .draw_series(LineSeries::new(p99s, P99.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(medians, MEDIAN.stroke_width(2)))
            .map_err(err)?;
        let point = |m: &Marker| (scale.to(axis, m.x), plotted(metric, m.y));
        chart
            .draw_series(
                markers
                    .iter()
                    .filter(|m| !m.in_campaign)
                    .map(|m| Circle::new(point(m), 3, RED.mix(0.8).filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(
                markers
                    .iter()
                    .filter(|m| m.in_campaign)
                    .map(|m| Circle::new(point(m), 4, ORANGE.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(
                markers
                    .iter()
                    .filter_map(|m| m.rank.filter(|r| *r <= LABELLED).map(|r| (m, r)))
                    .map(|(m, r)| {
                        let (x, y) = point(m);
                        Text::new(
                            r.to_string(),
                            (x, y),
                            ("sans-serif", 16).into_font().color(&INK),
                        )
                    }),
            )
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One event of a campaign on its timeline.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Event time (seconds), when known.
    pub time: Option<f64>,
    /// The campaign's score (bits) after this event.
    pub campaign_score: f64,
    /// The event's own score.
    pub score: f64,
}

/// A campaign's timeline: its events in order, numbered, over time (or over their order when
/// a time is missing), climbing with the campaign's score.
pub fn timeline(steps: &[Step], size: (u32, u32)) -> anyhow::Result<String> {
    let timed = steps.iter().all(|s| s.time.is_some());
    let start = steps.first().and_then(|s| s.time).unwrap_or(0.0);
    let xs: Vec<f64> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| match (timed, s.time) {
            (true, Some(t)) => (t - start) / 60.0,
            _ => (i + 1) as f64,
        })
        .collect();
    let x_max = xs.iter().copied().fold(0.0f64, f64::max);
    let pad = (x_max * 0.04).max(0.5);
    let (x0, x1) = (xs.first().copied().unwrap_or(0.0) - pad, x_max + pad);
    let y_max = steps
        .iter()
        .map(|s| s.campaign_score)
        .fold(1.0f64, f64::max)
        * 1.25;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..y_max)
            .map_err(err)?;
        let x_fmt = |x: &f64| {
            if timed {
                format!("{x:.0}")
            } else {
                format!("{}", x.round())
            }
        };
        chart
            .configure_mesh()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(RGBColor(0, 0, 0).mix(0.08))
            .x_labels(10)
            .y_labels(5)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|y: &f64| format!("{y:.0}"))
            .x_desc(if timed {
                "minutes since the campaign's first event"
            } else {
                "event of the campaign"
            })
            .y_desc("campaign score (bits)")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(err)?;
        let mut path = Vec::with_capacity(steps.len() * 2);
        let mut before = 0.0;
        for (x, s) in xs.iter().zip(steps) {
            path.push((*x, before));
            path.push((*x, s.campaign_score));
            before = s.campaign_score;
        }
        chart
            .draw_series(LineSeries::new(path, ORANGE.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(xs.iter().zip(steps).map(|(x, s)| {
                let color = if s.score >= 0.999 { RED } else { ORANGE };
                Circle::new((*x, s.campaign_score), 5, color.filled())
            }))
            .map_err(err)?;
        chart
            .draw_series(xs.iter().zip(steps).enumerate().map(|(i, (x, s))| {
                Text::new(
                    (i + 1).to_string(),
                    (*x, s.campaign_score + y_max * 0.06),
                    ("sans-serif", 16).into_font().color(&INK),
                )
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(group_digits(1_234_567), "1,234,567");
        assert_eq!(group_digits(12), "12");
        assert_eq!(group_digits(123), "123");
        assert_eq!(x_label(XAxis::Time, 1_709_556_721.0, 3600.0), "12:52");
        assert_eq!(
            x_label(XAxis::Time, 1_709_556_721.0, 2.0 * 86_400.0),
            "03-04 12:52"
        );
    }

    #[test]
    fn plots_are_svg() {
        use super::super::collect::Density;
        let mut d = Density::new(1.0);
        for i in 0..5000 {
            let x = 1_709_510_400.0 + f64::from(i) * 30.0;
            d.add(x, f64::from(i % 100) / 100.0, f64::from(i % 17));
        }
        assert!(d.columns.len() <= super::super::collect::COLUMNS);
        assert_eq!(d.events(), 5000);
        let markers = [Marker {
            x: 1_709_556_721.0,
            y: 0.9999,
            rank: Some(1),
            in_campaign: true,
        }];
        let columns: Vec<(f64, f64, &Column)> = d
            .columns
            .iter()
            .map(|(k, c)| {
                let (a, b) = d.span(*k);
                (a, b, &**c)
            })
            .collect();
        for metric in [Metric::Score, Metric::Bits] {
            let svg = density(&columns, XAxis::Time, metric, &markers, (800, 300)).expect("plot");
            assert!(svg.starts_with("<svg") && svg.contains("<rect") && svg.contains("<circle"));
        }
        let steps = [
            Step {
                time: Some(0.0),
                campaign_score: 20.0,
                score: 0.9999,
            },
            Step {
                time: Some(120.0),
                campaign_score: 35.0,
                score: 0.995,
            },
        ];
        let svg = timeline(&steps, (800, 200)).expect("timeline");
        assert!(
            svg.contains("<circle") && svg.contains("\n2\n</text>"),
            "{svg}"
        );
    }
}
