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

/// A count short enough for a tight place (a KPI card): exact below a million (`999,999`),
/// then one decimal of the unit, rounded half up (`3,150,000` → `3.2M`, `158,316,865` →
/// `158.3M`, `2,000,000,000` → `2B`). Integer arithmetic; the exact value goes beside it.
pub fn abbreviate_count(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    let abs = n.unsigned_abs();
    if abs < 1_000_000 {
        return format!("{sign}{}", group_thousands(abs));
    }
    format!("{sign}{}", abbreviate_millions(abs))
}

/// Dollars short enough for a tight place: `format_usd` below a million dollars, then like
/// `abbreviate_count` (`$1.2M`).
pub fn abbreviate_usd(nano: i64) -> String {
    let abs = nano.unsigned_abs();
    let dollars = abs / NANO_PER_USD as u64;
    if dollars < 1_000_000 {
        return format_usd(nano);
    }
    let sign = if nano < 0 { "-" } else { "" };
    format!("{sign}${}", abbreviate_millions(dollars))
}

/// `n` ≥ 1,000,000 in M, B or T with one decimal (dropped when zero), rounded half up.
fn abbreviate_millions(n: u64) -> String {
    let n = u128::from(n);
    let mut unit = 1_000_000u128;
    for suffix in ["M", "B", "T"] {
        let tenths = (n * 10 + unit / 2) / unit;
        if tenths < 10_000 || suffix == "T" {
            let whole = group_thousands((tenths / 10) as u64);
            return match tenths % 10 {
                0 => format!("{whole}{suffix}"),
                d => format!("{whole}.{d}{suffix}"),
            };
        }
        unit *= 1_000;
    }
    unreachable!("the loop returns at T")
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

/// A share in tenths of a percent, shown as `35.7%`.
pub fn tenths_percent(permille: i64) -> String {
    format!("{}.{}%", permille / 10, permille % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_of_a_percent_show_one_decimal() {
        assert_eq!(tenths_percent(357), "35.7%");
        assert_eq!(tenths_percent(1000), "100.0%");
        assert_eq!(tenths_percent(5), "0.5%");
    }

    #[test]
    fn big_numbers_are_abbreviated_and_small_ones_exact() {
        assert_eq!(abbreviate_count(0), "0");
        assert_eq!(abbreviate_count(999_999), "999,999");
        assert_eq!(abbreviate_count(1_000_000), "1M");
        assert_eq!(abbreviate_count(3_100_000), "3.1M");
        assert_eq!(abbreviate_count(3_150_000), "3.2M");
        assert_eq!(abbreviate_count(3_149_999), "3.1M");
        assert_eq!(abbreviate_count(158_316_865), "158.3M");
        assert_eq!(abbreviate_count(999_949_999), "999.9M");
        assert_eq!(abbreviate_count(999_950_000), "1B");
        assert_eq!(abbreviate_count(2_000_000_000), "2B");
        assert_eq!(abbreviate_count(1_234_567_890_123), "1.2T");
        assert_eq!(abbreviate_count(i64::MAX), "9,223,372T");
        assert_eq!(abbreviate_count(-2_500_000), "-2.5M");
        assert_eq!(abbreviate_count(i64::MIN), "-9,223,372T");
        assert_eq!(abbreviate_usd(2_900_000_000), "$2.90");
        assert_eq!(abbreviate_usd(999_999_990_000_000), "$999,999.99");
        assert_eq!(abbreviate_usd(1_250_000 * NANO_PER_USD), "$1.3M");
        assert_eq!(abbreviate_usd(-1_200_000 * NANO_PER_USD), "-$1.2M");
    }

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
