//! Wall-clock time for headers and sidecars, without a time-zone database: UTC from the system clock.

use ionm_edf::StartDateTime;
use std::time::{SystemTime, UNIX_EPOCH};

/// Civil date (year, month 1–12, day 1–31) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A Unix time in whole seconds as a date and time (UTC), with the year clamped to EDF's 1985–2084.
pub fn datetime_from_unix(secs: i64) -> StartDateTime {
    let (y, month, day) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let (year, month, day, hour, minute, second) = if y < 1985 {
        (1985, 1, 1, 0, 0, 0)
    } else if y > 2084 {
        (2084, 12, 31, 23, 59, 59)
    } else {
        (
            y as u16,
            month,
            day,
            (s / 3600) as u8,
            (s / 60 % 60) as u8,
            (s % 60) as u8,
        )
    };
    StartDateTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    }
}

/// The current time (UTC) to the second.
pub fn now_utc() -> StartDateTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    datetime_from_unix(secs)
}

/// ISO 8601 without a zone, e.g. `2025-01-02T03:04:05`.
pub fn iso(t: &StartDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // 2000-03-01T00:00:00Z = 951868800 (date -u -d @951868800); 2024-02-29T12:34:56Z = 1709210096.
        assert_eq!(iso(&datetime_from_unix(951_868_800)), "2000-03-01T00:00:00");
        assert_eq!(iso(&datetime_from_unix(1_709_210_096)), "2024-02-29T12:34:56");
        assert_eq!(iso(&datetime_from_unix(0)), "1985-01-01T00:00:00");
    }
}
