//! Pricing (ssr only): the embedded price table, token normalisation, and cost in nano-USD.
//! Depends on nothing but serde and regex-lite; exact integer arithmetic throughout.

pub mod decimal;
pub mod normalize;
pub mod table;

pub use decimal::{parse_price, parse_usd_to_nano};
pub use normalize::{Usage, from_anthropic, from_openai};
pub use table::{PriceTable, Pricing, price_table};

/// How an event's cost was arrived at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    /// Computed from the price table.
    Table(i64),
    /// Sent by the client as `cost_usd` (wins over the table).
    Override(i64),
    /// No known price for the model: shown as unpriced, never as $0.
    Unpriced,
}

impl Cost {
    /// nano-USD, or `None` when unpriced.
    pub fn nano(self) -> Option<i64> {
        match self {
            Cost::Table(n) | Cost::Override(n) => Some(n),
            Cost::Unpriced => None,
        }
    }

    /// The stored `cost_source` label.
    pub fn source(self) -> &'static str {
        match self {
            Cost::Table(_) => "table",
            Cost::Override(_) => "override",
            Cost::Unpriced => "unpriced",
        }
    }
}

/// Cost of one event: an explicit override wins, else the table price, else unpriced.
pub fn cost_of(provider: &str, model: &str, usage: &Usage, override_nano: Option<i64>) -> Cost {
    if let Some(n) = override_nano {
        return Cost::Override(n);
    }
    match price_table().lookup(provider, model) {
        Some(p) => Cost::Table(p.cost_nano(usage)),
        None => Cost::Unpriced,
    }
}
