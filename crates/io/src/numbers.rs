//! Parsing of the large counts people type on the command line: `13B`, `1.3e10`, `15T`, `7k`.
//!
//! Parameter, token and FLOP counts span twenty orders of magnitude, and people write them the
//! way papers do: a mantissa with a scale suffix. The suffixes are the short-scale ones used in
//! the literature (K = 10^3, M = 10^6, B = 10^9, T = 10^12), case-insensitive; scientific
//! notation works with or without a suffix. Negative, NaN, infinite, empty and otherwise
//! malformed inputs are rejected with a message that says what was expected, so the functions
//! can be used directly as clap `value_parser`s.

use thiserror::Error;

/// What the error messages suggest, so every rejection shows the accepted forms.
const EXPECTED: &str = "expected a number such as 13B, 260B, 1.3e10, 15T, 1.5M or 7k \
                        (suffixes K, M, B, T = 10^3, 10^6, 10^9, 10^12)";

/// Why a number was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NumberError {
    /// Nothing was given.
    #[error("empty value; {EXPECTED}")]
    Empty,
    /// A leading minus sign.
    #[error("`{0}` is negative; {EXPECTED}")]
    Negative(String),
    /// Zero where a positive count is needed.
    #[error("`{0}` is zero; a positive value is needed")]
    Zero(String),
    /// NaN, infinity, or a value too large for a 64-bit float once scaled.
    #[error("`{0}` is not a finite number; {EXPECTED}")]
    NotFinite(String),
    /// Anything else that does not parse.
    #[error("`{0}` is not a number; {EXPECTED}")]
    Invalid(String),
}

/// The multiplier of a scale suffix, or `None` when `c` is not one.
fn suffix_scale(c: char) -> Option<f64> {
    match c.to_ascii_uppercase() {
        'K' => Some(1e3),
        'M' => Some(1e6),
        'B' => Some(1e9),
        'T' => Some(1e12),
        _ => None,
    }
}

/// Parses a non-negative count with an optional K/M/B/T suffix (`13B` = 1.3e10).
pub fn parse_count(text: &str) -> Result<f64, NumberError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(NumberError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(NumberError::Negative(trimmed.to_string()));
    }
    let (mantissa, scale) = match trimmed.chars().last().and_then(suffix_scale) {
        // The suffix is one ASCII byte, so slicing one byte off the end stays on a char boundary.
        Some(scale) => (trimmed[..trimmed.len() - 1].trim_end(), scale),
        None => (trimmed, 1.0),
    };
    // Rust's float parser also accepts words such as `inf`, `infinity` and `nan`; only digits,
    // a point, an exponent and a leading plus sign are numbers here, so words are refused first.
    let numeric_chars = mantissa
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    let has_digit = mantissa.chars().any(|c| c.is_ascii_digit());
    if !numeric_chars || !has_digit {
        let lower = mantissa.to_ascii_lowercase();
        return Err(if lower.contains("inf") || lower.contains("nan") {
            NumberError::NotFinite(trimmed.to_string())
        } else {
            NumberError::Invalid(trimmed.to_string())
        });
    }
    let value: f64 = mantissa
        .parse()
        .map_err(|_| NumberError::Invalid(trimmed.to_string()))?;
    let scaled = value * scale;
    if !scaled.is_finite() {
        return Err(NumberError::NotFinite(trimmed.to_string()));
    }
    // `+0` and `0e5` parse to zero, which is a valid count; negative zero cannot reach here
    // because a leading minus was refused, but normalise it anyway so output never shows `-0`.
    Ok(if scaled == 0.0 { 0.0 } else { scaled })
}

/// Parses a strictly positive count with an optional K/M/B/T suffix: parameter, token and FLOP
/// counts, where zero would make every later division meaningless.
pub fn parse_positive_count(text: &str) -> Result<f64, NumberError> {
    let value = parse_count(text)?;
    if value == 0.0 {
        return Err(NumberError::Zero(text.trim().to_string()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected outcome of one case: a value, or a predicate on the error kind.
    type Expected = Result<f64, fn(&NumberError) -> bool>;

    /// The one place the parser is called, so every case below reads as input and expectation.
    fn check(input: &str, expected: Expected) {
        let got = parse_count(input);
        match (expected, &got) {
            (Ok(want), Ok(value)) => {
                let rel = if want == 0.0 {
                    value.abs()
                } else {
                    ((value - want) / want).abs()
                };
                assert!(rel < 1e-12, "{input:?}: got {value}, want {want}");
            }
            (Err(matches), Err(e)) => assert!(matches(e), "{input:?}: wrong error {e:?}"),
            (want, got) => panic!("{input:?}: want {want:?}, got {got:?}"),
        }
    }

    fn empty(e: &NumberError) -> bool {
        matches!(e, NumberError::Empty)
    }
    fn negative(e: &NumberError) -> bool {
        matches!(e, NumberError::Negative(_))
    }
    fn not_finite(e: &NumberError) -> bool {
        matches!(e, NumberError::NotFinite(_))
    }
    fn invalid(e: &NumberError) -> bool {
        matches!(e, NumberError::Invalid(_))
    }

    #[test]
    fn table_of_inputs() {
        let cases: &[(&str, Expected)] = &[
            // Plain and scientific notation.
            ("0", Ok(0.0)),
            ("7", Ok(7.0)),
            ("1.3e10", Ok(1.3e10)),
            ("1.3E10", Ok(1.3e10)),
            ("5.76e23", Ok(5.76e23)),
            ("2e-3", Ok(2e-3)),
            ("+42", Ok(42.0)),
            (".5", Ok(0.5)),
            ("5.", Ok(5.0)),
            ("  13B  ", Ok(13e9)),
            // Every suffix in both cases.
            ("7k", Ok(7e3)),
            ("7K", Ok(7e3)),
            ("1.5M", Ok(1.5e6)),
            ("1.5m", Ok(1.5e6)),
            ("13B", Ok(13e9)),
            ("13b", Ok(13e9)),
            ("260B", Ok(260e9)),
            ("15T", Ok(15e12)),
            ("15t", Ok(15e12)),
            ("1.4T", Ok(1.4e12)),
            ("1e3B", Ok(1e12)),
            ("13 B", Ok(13e9)),
            // Rejections.
            ("", Err(empty)),
            ("   ", Err(empty)),
            ("-5", Err(negative)),
            ("-13B", Err(negative)),
            ("-0", Err(negative)),
            ("NaN", Err(not_finite)),
            ("nan", Err(not_finite)),
            ("inf", Err(not_finite)),
            ("+inf", Err(not_finite)),
            ("Infinity", Err(not_finite)),
            ("1e309", Err(not_finite)),
            ("1e300T", Err(not_finite)),
            ("B", Err(invalid)),
            ("abc", Err(invalid)),
            ("13G", Err(invalid)),
            ("13BB", Err(invalid)),
            ("1,000", Err(invalid)),
            ("1_000", Err(invalid)),
            ("1.2.3", Err(invalid)),
            ("e10", Err(invalid)),
            ("1e", Err(invalid)),
            ("0x10", Err(invalid)),
            ("13µ", Err(invalid)),
            ("5-", Err(invalid)),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    #[test]
    fn positive_rejects_zero_only() {
        assert_eq!(parse_positive_count("13B"), Ok(13e9));
        assert!(matches!(
            parse_positive_count("0"),
            Err(NumberError::Zero(_))
        ));
        assert!(matches!(
            parse_positive_count("0e5T"),
            Err(NumberError::Zero(_))
        ));
        assert!(matches!(
            parse_positive_count("-1"),
            Err(NumberError::Negative(_))
        ));
    }

    #[test]
    fn messages_say_what_is_expected() {
        let message = parse_count("abc").unwrap_err().to_string();
        assert!(message.contains("`abc` is not a number"), "{message}");
        assert!(message.contains("13B"), "{message}");
        let message = parse_count("-5").unwrap_err().to_string();
        assert!(message.contains("negative"), "{message}");
    }
}
