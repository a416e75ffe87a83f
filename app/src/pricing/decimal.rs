//! Exact decimal-string parsing into scaled integers (no floats anywhere).

/// Fixed-point scale of parsed per-million-token prices: 10^12 units per USD.
pub const PRICE_SCALE_DIGITS: u32 = 12;

/// Parses a non-negative decimal string (`"3"`, `"0.125"`) into an integer scaled by
/// 10^`digits`, rejecting signs, exponents, empty parts and more than `digits` decimals.
fn parse_scaled(s: &str, digits: u32) -> Result<i128, &'static str> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be a non-negative decimal number such as \"0.0125\"");
    }
    if s.contains('.') && (frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit())) {
        return Err("must be a non-negative decimal number such as \"0.0125\"");
    }
    if whole.len() > 15 {
        return Err("is too large");
    }
    if frac.len() > digits as usize {
        return Err("has too many decimal places");
    }
    let mut v: i128 = whole.parse::<i128>().map_err(|_| "is not a number")?;
    for _ in 0..digits {
        v *= 10;
    }
    let mut f: i128 = 0;
    for (i, b) in frac.bytes().enumerate() {
        f += i128::from(b - b'0') * 10i128.pow(digits - 1 - i as u32);
    }
    Ok(v + f)
}

/// A price in USD per million tokens, scaled by 10^12.
pub fn parse_price(s: &str) -> Result<i128, &'static str> {
    parse_scaled(s, PRICE_SCALE_DIGITS)
}

/// A USD amount (`cost_usd`) as integer nano-USD, rounded half up once at the 9th decimal.
/// Up to 18 decimals are accepted.
pub fn parse_usd_to_nano(s: &str) -> Result<i64, &'static str> {
    let atto = parse_scaled(s, 18)?;
    let nano = (atto + 500_000_000) / 1_000_000_000;
    i64::try_from(nano).map_err(|_| "is too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly() {
        assert_eq!(parse_price("3"), Ok(3_000_000_000_000));
        assert_eq!(parse_price("0.125"), Ok(125_000_000_000));
        assert_eq!(parse_price("0.000001"), Ok(1_000_000));
        assert!(parse_price("-1").is_err());
        assert!(parse_price("1e3").is_err());
        assert!(parse_price(".5").is_err());
        assert!(parse_price("5.").is_err());
        assert!(parse_price("").is_err());
    }

    #[test]
    fn usd_overrides_round_once_half_up() {
        assert_eq!(parse_usd_to_nano("0.0123"), Ok(12_300_000));
        assert_eq!(parse_usd_to_nano("1"), Ok(1_000_000_000));
        assert_eq!(parse_usd_to_nano("0.0000000005"), Ok(1));
        assert_eq!(parse_usd_to_nano("0.0000000004999"), Ok(0));
        assert!(parse_usd_to_nano("-0.5").is_err());
        assert!(parse_usd_to_nano("abc").is_err());
        assert!(parse_usd_to_nano("99999999999999999").is_err());
    }
}
