//! Calendar arithmetic and CloudTrail time formats, without a clock or a date crate.
//!
//! Times are whole seconds since the Unix epoch (`i64`), always UTC.

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;
/// Seconds in an hour.
pub(crate) const HOUR: i64 = 3_600;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) const fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The `(year, month, day)` of a day number since 1970-01-01.
pub(crate) const fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Day of the week of a Unix time shifted by `offset_min` minutes: 0 = Monday … 6 = Sunday.
pub(crate) fn weekday(t: i64, offset_min: i32) -> u32 {
    let local = t + i64::from(offset_min) * 60;
    (local.div_euclid(DAY) + 3).rem_euclid(7) as u32
}

/// Local hour of day as a fraction (`9.5` = 09:30) for a Unix time and a UTC offset.
pub(crate) fn local_hour(t: i64, offset_min: i32) -> f64 {
    let local = t + i64::from(offset_min) * 60;
    local.rem_euclid(DAY) as f64 / HOUR as f64
}

fn push2(out: &mut String, v: u32) {
    out.push((b'0' + (v / 10) as u8) as char);
    out.push((b'0' + (v % 10) as u8) as char);
}

/// RFC 3339 as CloudTrail writes `eventTime`: `2024-03-04T09:15:02Z`.
pub(crate) fn rfc3339(t: i64) -> String {
    let mut s = String::with_capacity(20);
    write_rfc3339(&mut s, t);
    s
}

/// Appends `eventTime`-style RFC 3339 to `out`.
pub(crate) fn write_rfc3339(out: &mut String, t: i64) {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    let secs = t.rem_euclid(DAY) as u32;
    let y = y as u32;
    push2(out, y / 100);
    push2(out, y % 100);
    out.push('-');
    push2(out, m);
    out.push('-');
    push2(out, d);
    out.push('T');
    push2(out, secs / 3600);
    out.push(':');
    push2(out, secs / 60 % 60);
    out.push(':');
    push2(out, secs % 60);
    out.push('Z');
}

/// The date part only: `2024-03-04`.
pub(crate) fn date(t: i64) -> String {
    let mut s = rfc3339(t);
    s.truncate(10);
    s
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The timestamp style of IAM and STS response elements: `Mar 4, 2024, 9:15:02 AM`.
pub(crate) fn aws_long(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    let secs = t.rem_euclid(DAY);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    format!(
        "{} {d}, {y}, {h12}:{mi:02}:{s:02} {ampm}",
        MONTHS[(m - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let t = days_from_civil(2024, 3, 4) * DAY + 9 * HOUR + 15 * 60 + 2;
        assert_eq!(rfc3339(t), "2024-03-04T09:15:02Z");
        assert_eq!(aws_long(t), "Mar 4, 2024, 9:15:02 AM");
        assert_eq!(aws_long(t + 5 * HOUR), "Mar 4, 2024, 2:15:02 PM");
        assert_eq!(date(t), "2024-03-04");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(days_from_civil(2024, 2, 29) * DAY),
            "2024-02-29T00:00:00Z"
        );
    }

    #[test]
    fn weekdays() {
        // 2024-03-04 was a Monday.
        let t = days_from_civil(2024, 3, 4) * DAY + 12 * HOUR;
        assert_eq!(weekday(t, 0), 0);
        assert_eq!(weekday(t + 5 * DAY, 0), 5);
        // Monday 01:00 UTC is still Sunday evening in New York.
        assert_eq!(weekday(t - 11 * HOUR, -300), 6);
        assert!((local_hour(t, 60) - 13.0).abs() < 1e-9);
    }

    #[test]
    fn civil_round_trip() {
        for z in [-1000, 0, 1, 19_786, 30_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
