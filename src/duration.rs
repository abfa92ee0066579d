//! Durations as flags and logs write them: `250ms`, `2s`, `1m30s`, `1.5h`. Parsing is exact to
//! the nanosecond; formatting is its inverse, to the millisecond.

use std::time::Duration;

/// `0`, or a sequence of numbers with units: `250ms`, `2s`, `1m30s`, `1.5h`. Exact to the
/// nanosecond (integer arithmetic); at most a billion seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (int, frac) = rest[..num_len]
            .split_once('.')
            .unwrap_or((&rest[..num_len], ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return None;
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit: u128 = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        let whole: u128 = match int {
            "" => 0,
            _ => int.parse().ok()?,
        };
        // Digits past the 20th are below a nanosecond even in hours.
        let frac = &frac[..frac.len().min(20)];
        let part = match frac {
            "" => 0,
            _ => frac.parse::<u128>().ok()? * unit / 10u128.pow(frac.len() as u32),
        };
        nanos = nanos.checked_add(whole.checked_mul(unit)?.checked_add(part)?)?;
    }
    (nanos < 1_000_000_000 * 1_000_000_000).then(|| {
        Duration::new(
            (nanos / 1_000_000_000) as u64,
            (nanos % 1_000_000_000) as u32,
        )
    })
}

/// The inverse of `parse_duration`, for logs: `250ms`, `2s`, `1m30s`, `1.5s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms % 1000 != 0 {
        // Whole milliseconds, as parsed: 1.5s, 99.999s (never rounded up to "100.s").
        let frac = format!("{:03}", ms % 1000);
        return format!("{}.{}s", ms / 1000, frac.trim_end_matches('0'));
    }
    let s = d.as_secs();
    let mut out = String::new();
    for (unit, n) in [("h", s / 3600), ("m", s / 60 % 60), ("s", s % 60)] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("0"), Some(ms(0)));
        assert_eq!(parse_duration("250ms"), Some(ms(250)));
        assert_eq!(parse_duration("2s"), Some(ms(2000)));
        assert_eq!(parse_duration("1m"), Some(ms(60_000)));
        assert_eq!(parse_duration("1h"), Some(ms(3_600_000)));
        assert_eq!(parse_duration("1m30s"), Some(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Some(ms(1500)));
        for bad in [
            "",
            "1",
            "s",
            "1x",
            "-1s",
            "1.2.3s",
            "ms",
            "1sm",
            "99999999999h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_durations() {
        let ms = Duration::from_millis;
        assert_eq!(format_duration(ms(250)), "250ms");
        assert_eq!(format_duration(ms(1000)), "1s");
        assert_eq!(format_duration(ms(1500)), "1.5s");
        assert_eq!(format_duration(ms(90_000)), "1m30s");
        assert_eq!(format_duration(ms(300_000)), "5m");
        // Found by fuzzing: 99.99972s printed as "100.s".
        let d = parse_duration("99999.72ms").unwrap();
        assert_eq!(format_duration(d), "99.999s");
        assert_eq!(parse_duration("99.999s"), Some(ms(99_999)));
    }
}
