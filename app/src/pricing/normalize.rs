//! Provider usage shapes normalised into tokentally's four disjoint token buckets.

/// Token usage in four disjoint buckets (input excludes cached tokens), plus the part of
/// `cache_creation` written with a 1-hour TTL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    /// Part of `cache_creation` (not in addition to it) written with a 1-hour TTL.
    pub cache_creation_1h: u64,
}

impl Usage {
    /// All tokens of the event: the four buckets added.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_read + self.cache_creation
    }

    /// The request's whole input, which long-context tiers are decided on.
    pub fn whole_input(&self) -> u64 {
        self.input + self.cache_read + self.cache_creation
    }
}

/// OpenAI: `prompt_tokens` *includes* `prompt_tokens_details.cached_tokens`.
pub fn from_openai(prompt_tokens: u64, completion_tokens: u64, cached_tokens: u64) -> Usage {
    let cached = cached_tokens.min(prompt_tokens);
    Usage { input: prompt_tokens - cached, output: completion_tokens, cache_read: cached, ..Usage::default() }
}

/// Anthropic: `input_tokens` *excludes* `cache_read_input_tokens` and
/// `cache_creation_input_tokens`; the 1-hour part comes from `cache_creation.ephemeral_1h_input_tokens`.
pub fn from_anthropic(
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
    ephemeral_1h_input_tokens: u64,
) -> Usage {
    Usage {
        input: input_tokens,
        output: output_tokens,
        cache_read: cache_read_input_tokens,
        cache_creation: cache_creation_input_tokens,
        cache_creation_1h: ephemeral_1h_input_tokens.min(cache_creation_input_tokens),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_cached_tokens_are_taken_out_of_input() {
        let u = from_openai(1_000, 200, 800);
        assert_eq!((u.input, u.output, u.cache_read, u.cache_creation), (200, 200, 800, 0));
        assert_eq!(u.total(), 1_200);
    }

    #[test]
    fn anthropic_cache_fields_are_already_separate() {
        let u = from_anthropic(50, 300, 2_000, 1_000, 400);
        assert_eq!((u.input, u.output, u.cache_read, u.cache_creation), (50, 300, 2_000, 1_000));
        assert_eq!(u.cache_creation_1h, 400);
        assert_eq!(u.total(), 3_350);
        assert_eq!(u.whole_input(), 3_050);
    }
}
