//! Times as people read them: RFC 3339 in UTC plus how far away they are ("in 2 h", "5 min ago").

/// `unix` (seconds) as RFC 3339 in UTC, e.g. `2026-03-01T12:00:00Z`.
pub(crate) fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

/// The date of day `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// How far `then` is from `now`: `in 2 h`, `5 min ago`, `now`; the largest whole unit.
pub(crate) fn relative(then: u64, now: u64) -> String {
    let (span, future) = if then >= now {
        (then - now, true)
    } else {
        (now - then, false)
    };
    let amount = match span {
        0 => return "now".into(),
        1..=59 => format!("{span} s"),
        60..=3_599 => format!("{} min", span / 60),
        3_600..=172_799 => format!("{} h", span / 3_600),
        _ => format!("{} days", span / 86_400),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// `2026-03-01T12:00:00Z (in 2 h)`.
pub(crate) fn describe(then: u64, now: u64) -> String {
    format!("{} ({})", rfc3339(then), relative(then, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn relative_uses_the_largest_whole_unit() {
        assert_eq!(relative(100, 100), "now");
        assert_eq!(relative(130, 100), "in 30 s");
        assert_eq!(relative(100 + 7_200, 100), "in 2 h");
        assert_eq!(relative(100, 100 + 300), "5 min ago");
        assert_eq!(relative(100 + 3 * 86_400, 100), "in 3 days");
        assert_eq!(describe(0, 60), "1970-01-01T00:00:00Z (1 min ago)");
    }
}
