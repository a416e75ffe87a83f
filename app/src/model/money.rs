//! Money is integer nano-USD end to end; this is the one place it becomes dollars.

/// Nano-USD per US dollar.
pub const NANO_PER_USD: i64 = 1_000_000_000;

/// Exact decimal string of a nano-USD amount, trailing zeros trimmed (at least two decimals):
/// `1_500_000_000` → `"1.50"`, `1_234` → `"0.000001234"`.
pub fn usd_decimal(nano: i64) -> String {
    let sign = if nano < 0 { "-" } else { "" };
    let abs = nano.unsigned_abs();
    let whole = abs / NANO_PER_USD as u64;
    let frac = format!("{:09}", abs % NANO_PER_USD as u64);
    let trimmed = frac.trim_end_matches('0');
    let frac = if trimmed.len() < 2 { &frac[..2] } else { trimmed };
    format!("{sign}{whole}.{frac}")
}

/// Dollars for display: cents for amounts of a cent or more, otherwise enough digits to be non-zero
/// (`$1,234.57`, `$0.0042`, `$0.00`).
pub fn format_usd(nano: i64) -> String {
    let sign = if nano < 0 { "-" } else { "" };
    let abs = nano.unsigned_abs();
    if abs == 0 {
        return "$0.00".to_string();
    }
    if abs < 10_000_000 {
        // Under one cent: show four significant decimals' worth, rounded half up.
        let tenths_of_milli = (abs + 5_000) / 10_000; // units of $0.00001
        let whole = tenths_of_milli / 100_000;
        let frac = tenths_of_milli % 100_000;
        let s = format!("{frac:05}");
        let s = s.trim_end_matches('0');
        return format!("{sign}${whole}.{}", if s.len() < 2 { "00" } else { s });
    }
    let cents = (abs + 5_000_000) / 10_000_000;
    let whole = cents / 100;
    format!("{sign}${}.{:02}", group_thousands(whole), cents % 100)
}

/// `1234567` → `"1,234,567"`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_are_exact() {
        assert_eq!(usd_decimal(1_500_000_000), "1.50");
        assert_eq!(usd_decimal(1_234), "0.000001234");
        assert_eq!(usd_decimal(0), "0.00");
        assert_eq!(usd_decimal(12_345_678_901), "12.345678901");
        assert_eq!(usd_decimal(-20_000_000), "-0.02");
    }

    #[test]
    fn display_rounds_to_cents_or_shows_small_amounts() {
        assert_eq!(format_usd(1_234_565_000_000), "$1,234.57");
        assert_eq!(format_usd(4_200_000), "$0.0042");
        assert_eq!(format_usd(0), "$0.00");
        assert_eq!(format_usd(10_000_000), "$0.01");
        assert_eq!(format_usd(1), "$0.00");
    }
}
