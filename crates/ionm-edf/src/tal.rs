//! EDF+ time-stamped annotation lists (TALs): parsing one annotation signal's bytes of a data record, and
//! encoding TALs into a caller's buffer.
//!
//! A TAL is `+onset[\x15duration]\x14text\x14text\x14…\x00`; the onset is in seconds relative to the header's
//! start date/time, with an obligatory sign and optional decimals; the duration has no sign. The first TAL of
//! the first annotation signal in every data record is the time-keeping TAL (`+onset\x14\x14\x00`): its onset
//! is the start time of that data record. Unused bytes after the last TAL are zero.

use std::fmt::Write as _;

use serde::Serialize;

/// One parsed TAL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tal {
    /// Onset in seconds after the header's start date/time.
    pub onset: f64,
    /// Duration in seconds, if given.
    pub duration: Option<f64>,
    /// The annotation texts (UTF-8; invalid sequences replaced). May include empty texts, e.g. the time-keeping
    /// TAL's.
    pub texts: Vec<String>,
    /// Byte offset of the TAL within the annotation signal's bytes of the record.
    pub offset: usize,
}

/// Why a TAL could not be parsed, and at which byte of the annotation signal's record bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalError {
    /// Byte offset within the annotation signal's bytes of the record.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

const ONSET_END: u8 = 0x14;
const DURATION_MARK: u8 = 0x15;

/// Parses every TAL in one annotation signal's bytes of one data record. Zero bytes after the last TAL are
/// padding.
pub fn parse_tals(bytes: &[u8]) -> Result<Vec<Tal>, TalError> {
    let mut tals = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() && bytes[pos] != 0 {
        let Some(len) = bytes[pos..].iter().position(|&b| b == 0) else {
            return Err(TalError {
                offset: pos,
                reason: "TAL is not terminated by a 0 byte before the end of the record".to_owned(),
            });
        };
        tals.push(parse_one(&bytes[pos..pos + len], pos)?);
        pos += len + 1;
    }
    Ok(tals)
}

fn parse_one(tal: &[u8], base: usize) -> Result<Tal, TalError> {
    let Some(head_end) = tal.iter().position(|&b| b == ONSET_END) else {
        return Err(TalError {
            offset: base,
            reason: format!("no 0x14 after the onset in {}", show(tal)),
        });
    };
    let head = &tal[..head_end];
    let (onset_b, duration_b) = match head.iter().position(|&b| b == DURATION_MARK) {
        Some(d) => (&head[..d], Some((&head[d + 1..], d + 1))),
        None => (head, None),
    };
    let onset = parse_time(onset_b, true).ok_or_else(|| TalError {
        offset: base,
        reason: format!("onset {} is not +seconds or -seconds", show(onset_b)),
    })?;
    let duration = match duration_b {
        Some((d, at)) => Some(parse_time(d, false).ok_or_else(|| TalError {
            offset: base + at,
            reason: format!("duration {} is not unsigned seconds", show(d)),
        })?),
        None => None,
    };
    let rest = &tal[head_end + 1..];
    if rest.last().is_some_and(|&b| b != ONSET_END) {
        return Err(TalError {
            offset: base + tal.len(),
            reason: "annotation text is not terminated by 0x14".to_owned(),
        });
    }
    let mut texts = Vec::new();
    if !rest.is_empty() {
        for t in rest[..rest.len() - 1].split(|&b| b == ONSET_END) {
            texts.push(match std::str::from_utf8(t) {
                Ok(s) => s.to_owned(),
                Err(_) => {
                    tracing::warn!(
                        offset = base,
                        "annotation text is not valid UTF-8; replacing invalid bytes"
                    );
                    String::from_utf8_lossy(t).into_owned()
                }
            });
        }
    }
    Ok(Tal {
        onset,
        duration,
        texts,
        offset: base,
    })
}

/// `[+-]digits[.digits]` (sign obligatory for onsets, absent for durations).
fn parse_time(b: &[u8], signed: bool) -> Option<f64> {
    let (neg, digits) = if signed {
        match b.first()? {
            b'+' => (false, &b[1..]),
            b'-' => (true, &b[1..]),
            _ => return None,
        }
    } else {
        (false, b)
    };
    let (int, frac) = match digits.iter().position(|&c| c == b'.') {
        Some(p) => (&digits[..p], Some(&digits[p + 1..])),
        None => (digits, None),
    };
    if int.is_empty() || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if let Some(f) = frac
        && (f.is_empty() || !f.iter().all(u8::is_ascii_digit))
    {
        return None;
    }
    // ASCII digits and a dot only, so the conversion and parse cannot fail on the character set.
    let v: f64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    v.is_finite().then_some(if neg { -v } else { v })
}

fn show(b: &[u8]) -> String {
    let s: String = b
        .iter()
        .take(40)
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect();
    format!("\"{s}\"")
}

/// Appends seconds as a TAL time: sign (if `signed`), integer part, and up to 9 decimals without trailing
/// zeros (nanosecond resolution).
pub(crate) fn write_time(out: &mut String, seconds: f64, signed: bool) {
    let mut ns = (seconds.abs() * 1e9).round();
    if ns > 9.0e18 {
        ns = 9.0e18;
    }
    let ns = ns as u64;
    if signed {
        out.push(if seconds < 0.0 && ns > 0 { '-' } else { '+' });
    }
    let (int, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    // Writing to a String cannot fail.
    let _ = write!(out, "{int}");
    if frac > 0 {
        let start = out.len();
        let _ = write!(out, ".{frac:09}");
        let trimmed = out[start..].trim_end_matches('0').len();
        out.truncate(start + trimmed);
    }
}

/// Appends one TAL (`+onset[\x15duration]\x14text\x14\x00`) to `out`.
pub(crate) fn write_tal(out: &mut String, onset: f64, duration: Option<f64>, text: &str) {
    write_time(out, onset, true);
    if let Some(d) = duration {
        out.push('\u{15}');
        write_time(out, d, false);
    }
    out.push('\u{14}');
    out.push_str(text);
    out.push('\u{14}');
    out.push('\0');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_timekeeping_and_annotations() {
        let b = b"+0.3945312\x14\x14\x00+2.3457031\x15.5\x14XLSpike\x14two\x14\x00\x00\x00";
        assert!(parse_tals(b).is_err(), "duration without integer part is invalid");
        let b = b"+0.3945312\x14\x14\x00+2.3457031\x150.5\x14XLSpike\x14two\x14\x00\x00\x00";
        let t = parse_tals(b).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].onset, 0.3945312);
        assert_eq!(t[0].texts, vec![String::new()]);
        assert_eq!(t[1].onset, 2.3457031);
        assert_eq!(t[1].duration, Some(0.5));
        assert_eq!(t[1].texts, vec!["XLSpike".to_owned(), "two".to_owned()]);
        assert_eq!(t[1].offset, 13);
    }

    #[test]
    fn rejects_malformed() {
        for b in [
            &b"0.5\x14\x14\x00"[..],
            b"+0.5\x14\x14",
            b"+0.5\x14abc\x00",
            b"+1x\x14\x14\x00",
            b"+\x14\x14\x00",
        ] {
            assert!(parse_tals(b).is_err(), "{}", show(b));
        }
    }

    #[test]
    fn time_formatting() {
        let mut s = String::new();
        write_time(&mut s, 0.1 + 0.2, true);
        assert_eq!(s, "+0.3");
        s.clear();
        write_time(&mut s, -12.0, true);
        assert_eq!(s, "-12");
        s.clear();
        write_time(&mut s, 1.000_000_001, false);
        assert_eq!(s, "1.000000001");
        s.clear();
        write_tal(&mut s, 3.25, Some(1.0), "stim");
        assert_eq!(s, "+3.25\u{15}1\u{14}stim\u{14}\0");
    }
}
