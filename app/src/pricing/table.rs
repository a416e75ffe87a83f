//! The embedded price table (`app/data/prices.json`, copied from shared/data) and model lookup.

use super::decimal::parse_price;
use super::normalize::Usage;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::LazyLock;

const PRICES_JSON: &str = include_str!("../../data/prices.json");

#[derive(Deserialize)]
struct File {
    prices: Vec<RawRow>,
}

#[derive(Deserialize)]
struct RawRow {
    provider: String,
    model: String,
    region: Option<String>,
    input_per_mtok: Option<String>,
    output_per_mtok: Option<String>,
    cache_read_per_mtok: Option<String>,
    cache_write_per_mtok: Option<String>,
    cache_write_1h_per_mtok: Option<String>,
    #[serde(default)]
    tiers: Vec<RawTier>,
    #[serde(rename = "match")]
    match_rule: Option<String>,
}

#[derive(Deserialize)]
struct RawTier {
    above_input_tokens: u64,
    input_per_mtok: Option<String>,
    output_per_mtok: Option<String>,
    cache_read_per_mtok: Option<String>,
    cache_write_per_mtok: Option<String>,
    cache_write_1h_per_mtok: Option<String>,
}

/// Per-bucket prices in USD per million tokens scaled by 10^12; `None` = not in the source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub input: i128,
    pub output: i128,
    pub cache_read: Option<i128>,
    pub cache_write: Option<i128>,
    pub cache_write_1h: Option<i128>,
}

/// The prices of one model: base rates plus long-context tiers (ascending thresholds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pricing {
    pub provider: String,
    pub model: String,
    pub base: Rates,
    pub tiers: Vec<(u64, Rates)>,
}

impl Pricing {
    /// The rates that apply to a request whose whole input is `whole_input` tokens.
    pub fn rates_for(&self, whole_input: u64) -> Rates {
        self.tiers.iter().rev().find(|(above, _)| whole_input > *above).map_or(self.base, |(_, r)| *r)
    }

    /// Exact cost in nano-USD, rounded half up once. A missing cache-read or cache-write price
    /// charges those tokens at the input price; a missing 1-hour write price uses the 5-minute one.
    pub fn cost_nano(&self, u: &Usage) -> i64 {
        let r = self.rates_for(u.whole_input());
        let cache_read = r.cache_read.unwrap_or(r.input);
        let cache_write = r.cache_write.unwrap_or(r.input);
        let cache_write_1h = r.cache_write_1h.unwrap_or(cache_write);
        let one_hour = u.cache_creation_1h.min(u.cache_creation);
        let scaled = i128::from(u.input) * r.input
            + i128::from(u.output) * r.output
            + i128::from(u.cache_read) * cache_read
            + i128::from(u.cache_creation - one_hour) * cache_write
            + i128::from(one_hour) * cache_write_1h;
        // scaled is USD·10^12 per 10^6 tokens, i.e. 10^-18 USD; nano-USD is 10^-9.
        let nano = (scaled + 500_000_000) / 1_000_000_000;
        i64::try_from(nano).unwrap_or(i64::MAX)
    }
}

enum Rule {
    Exact(String),
    Prefix(String),
    Contains(String),
    Regex(regex_lite::Regex),
}

impl Rule {
    fn matches(&self, model: &str) -> bool {
        match self {
            Rule::Exact(s) => model == s,
            Rule::Prefix(s) => model.starts_with(s.as_str()),
            Rule::Contains(s) => model.contains(s.as_str()),
            Rule::Regex(r) => r.is_match(model),
        }
    }
}

/// All priced models, indexed by (provider, model id).
pub struct PriceTable {
    exact: HashMap<(String, String), usize>,
    rules: Vec<(String, Rule, usize)>,
    rows: Vec<Pricing>,
}

/// The table embedded in the binary, parsed once.
pub fn price_table() -> &'static PriceTable {
    static TABLE: LazyLock<PriceTable> =
        LazyLock::new(|| PriceTable::from_json(PRICES_JSON).expect("the embedded prices.json is valid"));
    &TABLE
}

fn price(s: &Option<String>) -> Result<Option<i128>, String> {
    s.as_deref().map(|v| parse_price(v).map_err(|e| format!("price {v:?} {e}"))).transpose()
}

fn rates(
    input: &Option<String>,
    output: &Option<String>,
    cache_read: &Option<String>,
    cache_write: &Option<String>,
    cache_write_1h: &Option<String>,
    base: Option<&Rates>,
) -> Result<Rates, String> {
    Ok(Rates {
        input: price(input)?.or(base.map(|b| b.input)).unwrap_or_default(),
        output: price(output)?.or(base.map(|b| b.output)).unwrap_or_default(),
        cache_read: price(cache_read)?.or(base.and_then(|b| b.cache_read)),
        cache_write: price(cache_write)?.or(base.and_then(|b| b.cache_write)),
        cache_write_1h: price(cache_write_1h)?.or(base.and_then(|b| b.cache_write_1h)),
    })
}

/// Strips a trailing release date: `-2024-08-06`, `-20250929` or `@20250929`.
fn strip_date(model: &str) -> Option<&str> {
    let b = model.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if b.len() > 11 && b[b.len() - 11] == b'-' {
        let d = &b[b.len() - 10..];
        if digits(&d[0..4]) && d[4] == b'-' && digits(&d[5..7]) && d[7] == b'-' && digits(&d[8..10]) {
            return Some(&model[..model.len() - 11]);
        }
    }
    if b.len() > 9 && matches!(b[b.len() - 9], b'-' | b'@') && digits(&b[b.len() - 8..]) {
        return Some(&model[..model.len() - 9]);
    }
    None
}

impl PriceTable {
    /// Parses a `prices.v1` document.
    pub fn from_json(json: &str) -> Result<PriceTable, String> {
        let file: File = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut table = PriceTable { exact: HashMap::new(), rules: Vec::new(), rows: Vec::new() };
        for row in file.prices.iter().filter(|r| r.region.is_none()) {
            let ctx = |e: String| format!("{}/{}: {e}", row.provider, row.model);
            let base = rates(
                &row.input_per_mtok,
                &row.output_per_mtok,
                &row.cache_read_per_mtok,
                &row.cache_write_per_mtok,
                &row.cache_write_1h_per_mtok,
                None,
            )
            .map_err(ctx)?;
            let mut tiers = Vec::new();
            for t in &row.tiers {
                let r = rates(
                    &t.input_per_mtok,
                    &t.output_per_mtok,
                    &t.cache_read_per_mtok,
                    &t.cache_write_per_mtok,
                    &t.cache_write_1h_per_mtok,
                    Some(&base),
                )
                .map_err(ctx)?;
                tiers.push((t.above_input_tokens, r));
            }
            tiers.sort_by_key(|(above, _)| *above);
            let idx = table.rows.len();
            table.rows.push(Pricing {
                provider: row.provider.clone(),
                model: row.model.clone(),
                base,
                tiers,
            });
            table.exact.entry((row.provider.clone(), row.model.clone())).or_insert(idx);
            for part in row.match_rule.iter().flat_map(|m| m.split('|')) {
                let rule = match part.split_once(':') {
                    Some(("exact", s)) => Rule::Exact(s.to_string()),
                    Some(("prefix", s)) => Rule::Prefix(s.to_string()),
                    Some(("contains", s)) => Rule::Contains(s.to_string()),
                    Some(("regex", s)) => {
                        Rule::Regex(regex_lite::Regex::new(s).map_err(|e| ctx(e.to_string()))?)
                    }
                    _ => return Err(ctx(format!("unknown match rule {part:?}"))),
                };
                table.rules.push((row.provider.clone(), rule, idx));
            }
        }
        Ok(table)
    }

    fn exact(&self, provider: &str, model: &str) -> Option<&Pricing> {
        self.exact.get(&(provider.to_string(), model.to_string())).map(|&i| &self.rows[i])
    }

    /// Finds a model's prices: the exact id first, then the id without a release date
    /// (`gpt-4o-2024-08-06` → `gpt-4o`), then the table's `match` rules, then the same with a
    /// router prefix removed (`openai/gpt-4o`).
    pub fn lookup(&self, provider: &str, model: &str) -> Option<&Pricing> {
        let provider = provider.to_ascii_lowercase();
        let find = |model: &str| {
            self.exact(&provider, model)
                .or_else(|| strip_date(model).and_then(|m| self.exact(&provider, m)))
                .or_else(|| {
                    self.rules
                        .iter()
                        .find(|(p, rule, _)| *p == provider && rule.matches(model))
                        .map(|(_, _, i)| &self.rows[*i])
                })
        };
        find(model).or_else(|| model.split_once('/').and_then(|(_, m)| find(m)))
    }

    /// Number of priced models.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the table holds no model.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::{Cost, cost_of, from_anthropic, from_openai};

    #[test]
    fn embedded_table_parses_every_row() {
        assert!(price_table().len() > 800, "{}", price_table().len());
    }

    #[test]
    fn openai_usage_is_priced_per_bucket() {
        // gpt-4o: input 2.5, output 10, cache read 1.25 USD/Mtok.
        let u = from_openai(1_000, 500, 600);
        // 400*2.5 + 600*1.25 + 500*10 = 1000 + 750 + 5000 = 6750 USD per 1e6 tokens = $0.00675
        assert_eq!(cost_of("openai", "gpt-4o", &u, None), Cost::Table(6_750_000));
    }

    #[test]
    fn anthropic_usage_with_5m_and_1h_cache_writes() {
        // claude-sonnet-4-5: input 3, output 15, cache read 0.3, write 3.75, 1h write 6.
        let p = price_table().lookup("anthropic", "claude-sonnet-4-5").expect("priced");
        assert_eq!(p.base.cache_write_1h, Some(6_000_000_000_000));
        let u = from_anthropic(100, 200, 10_000, 2_000, 500);
        // 100*3 + 200*15 + 10000*0.3 + 1500*3.75 + 500*6 = 300+3000+3000+5625+3000 = 14925
        assert_eq!(cost_of("anthropic", "claude-sonnet-4-5", &u, None), Cost::Table(14_925_000));
    }

    #[test]
    fn rounding_happens_once_half_up() {
        // 0.0003 USD/Mtok = 0.3 nano-USD per input token; 0.0002 = 0.2 per cache-read token.
        let t = PriceTable::from_json(
            r#"{"prices":[{"provider":"p","model":"m","input_per_mtok":"0.0003","output_per_mtok":"0.0005","cache_read_per_mtok":"0.0002","cache_write_per_mtok":null}]}"#,
        )
        .expect("valid");
        let p = t.lookup("p", "m").expect("priced");
        let cost =
            |input, cache_read, output| p.cost_nano(&Usage { input, cache_read, output, ..Usage::default() });
        assert_eq!(cost(1, 0, 0), 0); // 0.3 → 0
        assert_eq!(cost(2, 0, 0), 1); // 0.6 → 1
        assert_eq!(cost(0, 0, 1), 1); // 0.5 → 1 (half up)
        // 0.3 + 0.2 = 0.5 → 1: rounding each bucket first would give 0 + 0 = 0.
        assert_eq!(cost(1, 1, 0), 1);
        // 3 × 0.3 + 3 × 0.2 + 3 × 0.5 = 3.0 exactly; per-bucket rounding would give 1 + 1 + 2 = 4.
        assert_eq!(cost(3, 3, 3), 3);
        // The embedded table: gpt-4o-mini input 0.15 USD/Mtok = 150 nano-USD per token.
        let one = Usage { input: 1, ..Usage::default() };
        assert_eq!(cost_of("openai", "gpt-4o-mini", &one, None), Cost::Table(150));
    }

    #[test]
    fn long_context_tier_applies_to_whole_request() {
        // claude-haiku-5-5: base input 0.1 / output 0.5; above 100k input: 0.5 / 2.5.
        let below = Usage { input: 50_000, cache_read: 50_000, output: 1_000, ..Usage::default() };
        // 50000*0.1 + 50000*0.01 + 1000*0.5 = 5000 + 500 + 500 = 6000 → $0.006
        assert_eq!(cost_of("anthropic", "claude-haiku-5-5", &below, None), Cost::Table(6_000_000));
        let above = Usage { input: 50_000, cache_read: 50_001, output: 1_000, ..Usage::default() };
        // 50000*0.5 + 50001*0.05 + 1000*2.5 = 25000 + 2500.05 + 2500 = 30000.05 → 30000050 nano
        assert_eq!(cost_of("anthropic", "claude-haiku-5-5", &above, None), Cost::Table(30_000_050));
    }

    #[test]
    fn override_wins_and_unknown_models_are_unpriced() {
        let u = Usage { input: 1_000_000, ..Usage::default() };
        assert_eq!(cost_of("openai", "gpt-4o", &u, Some(42)), Cost::Override(42));
        assert_eq!(cost_of("openai", "my-finetune-xyz", &u, None), Cost::Unpriced);
        assert_eq!(cost_of("acme", "gpt-4o", &u, None), Cost::Unpriced);
    }

    #[test]
    fn fallbacks_dated_ids_match_rules_and_router_prefixes() {
        let t = price_table();
        assert_eq!(t.lookup("openai", "gpt-4o-2099-01-01").map(|p| p.model.as_str()), Some("gpt-4o"));
        assert_eq!(
            t.lookup("anthropic", "claude-3-5-haiku-20241022").map(|p| p.model.as_str()),
            Some("claude-3-5-haiku-latest")
        );
        assert_eq!(
            t.lookup("anthropic", "claude-fable-5-2-20260101").map(|p| p.model.as_str()),
            Some("claude-fable-5-2")
        );
        assert_eq!(t.lookup("openai", "openai/gpt-4o").map(|p| p.model.as_str()), Some("gpt-4o"));
        assert_eq!(t.lookup("OpenAI", "gpt-4o").map(|p| p.model.as_str()), Some("gpt-4o"));
    }
}
