//! Times in words for texts staff read (reasons), from UTC milliseconds: services do not know a
//! store's time zone, so texts say UTC; consoles show local time.

/// `2026-11-27 13:04 UTC` for a UTC millisecond time (minutes, rounded down).
pub fn utc_words(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        of_day / 3600,
        (of_day % 3600) / 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::utc_words;

    #[test]
    fn times_read_as_dates() {
        assert_eq!(utc_words(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_words(1_795_463_647_142), "2026-11-23 19:54 UTC");
        assert_eq!(utc_words(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc_words(7_258_118_399_999), "2199-12-31 23:59 UTC");
    }
}
