//! Fuzzing the parsers that read untrusted bytes: the ingest body (JSON, then validation), the
//! gzip reader, the read API's query strings (with cursors and time ranges), and OTLP exports
//! (JSON and protobuf). Each check below takes any bytes: it must not panic, and what a parser
//! accepts must meet the limits it promises.
//!
//! Two fuzzers drive them. Coverage-guided, with libFuzzer on the stable toolchain
//! (`scripts/fuzz.sh`, targets in `server/fuzz`): the long runs. And a mutation fuzzer in the
//! unit tests (`mutation` below), so the test command runs a few thousand inputs per target
//! without an instrumented build: each input is a committed seed (`server/tests/fuzz/`) with
//! random mutations (bit flips, byte edits, cut, copied and spliced ranges, tokens that tend to
//! break parsers); `FUZZ_EXECS=2500000 cargo test --release -p server --lib fuzz -- --nocapture`
//! runs it longer.

use crate::http::ingest::{self, MAX_AGE_MS, MAX_FUTURE_MS, MAX_TAGS, MAX_TOKENS};
use crate::otel::Format;
use app::model::UsersParams;

/// The fixed "now" the checks validate against.
pub const NOW: i64 = 1_796_083_200_000; // 2026-12-01T00:00:00Z

/// What an accepted batch must meet, whatever the bytes were.
pub fn ingest_body(bytes: &[u8]) {
    let Ok((traces, events)) = ingest::parse_batch(bytes, NOW) else { return };
    for e in &events {
        assert!((NOW - MAX_AGE_MS..=NOW + MAX_FUTURE_MS).contains(&e.ts_ms), "timestamp {}", e.ts_ms);
        let u = &e.usage;
        assert!([u.input, u.output, u.cache_read, u.cache_creation].iter().all(|t| *t <= MAX_TOKENS));
        assert!(u.cache_creation_1h <= u.cache_creation);
        assert!(ingest::cost_within_cap(&e.provider, &e.model, u, e.cost_override_nano));
        assert!(e.tags.len() <= MAX_TAGS && e.tags.get("userId").is_none_or(|v| !v.is_empty()));
        assert!(!e.id.is_empty() && !e.provider.is_empty() && !e.model.is_empty());
    }
    for t in &traces {
        assert!((NOW - MAX_AGE_MS..=NOW + MAX_FUTURE_MS).contains(&t.started_ms));
        assert!(t.tags.len() <= MAX_TAGS);
    }
}

/// A gzip body: what inflates within the limit must meet the ingest checks.
pub fn gzip_body(bytes: &[u8]) {
    const LIMIT: usize = 64 * 1024;
    if let Ok(body) = ingest::inflate(bytes, LIMIT) {
        assert!(body.len() <= LIMIT);
        ingest_body(&body);
    }
}

/// A read API query string: accepted parameters are in range, a resolved window is within
/// [0, now + 1 day].
pub fn query_string(bytes: &[u8]) {
    let Ok(query) = std::str::from_utf8(bytes) else { return };
    if let Ok(p) = UsersParams::parse_query(query) {
        assert!(p.limit >= 1 && p.tags.len() <= app::model::query::MAX_TAG_FILTERS);
        if let Ok(f) = app::store::window::resolve_filter(&p, NOW) {
            assert!(0 <= f.from_ms && f.from_ms <= f.to_ms && f.to_ms <= NOW + 86_400_000, "{f:?}");
        }
    }
    let _ = app::model::TracesParams::parse_query(query);
}

/// An OTLP export, read as JSON and as protobuf: the calls it maps to are within the token caps.
pub fn otlp_export(bytes: &[u8]) {
    for format in [Format::Json, Format::Protobuf] {
        let _ = crate::otel::count::spans(format == Format::Protobuf, bytes);
        if let Ok(req) = crate::otel::decode(format, bytes) {
            for m in crate::otel::map::map_request(&req, NOW) {
                if let Some(Ok(call)) = m.call {
                    assert!(call.input <= MAX_TOKENS && call.output <= MAX_TOKENS);
                }
            }
        }
    }
}

/// The mutation fuzzer of the unit tests.
#[cfg(test)]
mod mutation {
    use super::*;
    use std::path::PathBuf;

    /// The demo's xorshift64*: reproducible from the printed seed.
    struct Rng(crate::demo::Rng);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0.next()
        }
        fn below(&mut self, n: usize) -> usize {
            self.0.below(n as u64) as usize
        }
    }

    /// Pieces that often find the corners of JSON, numbers, dates and query strings.
    const TOKENS: &[&[u8]] = &[
        b"\"",
        b"\\",
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"null",
        b"true",
        b"-1",
        b"0",
        b"1e999",
        b"-0",
        b"18446744073709551616",
        b"9223372036854775807",
        b"-9223372036854775808",
        b"1.5",
        b"\\u0000",
        b"\\ud800",
        b"\xff\xfe",
        b"%",
        b"%00",
        b"%ff",
        b"&",
        b"=",
        b".",
        b"..",
        b"T",
        b"Z",
        b"+99:99",
        b"9999-12-31T23:59:59Z",
        b"0000-01-01T00:00:00Z",
        b"2026-02-30",
        b"\"userId\":\"\"",
        b"\"usage\":{\"output_tokens\":1000000001}",
        b"\"cost_usd\":\"10000.000000000000000001\"",
    ];

    fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
        for _ in 0..1 + rng.below(4) {
            let len = input.len();
            match rng.below(8) {
                0 if len > 0 => {
                    let i = rng.below(len);
                    input[i] ^= 1 << rng.below(8);
                }
                1 if len > 0 => {
                    let i = rng.below(len);
                    input[i] = rng.next() as u8;
                }
                2 => {
                    let i = rng.below(len + 1);
                    input.insert(i, rng.next() as u8);
                }
                3 if len > 0 => {
                    let from = rng.below(len);
                    let to = (from + 1 + rng.below(16)).min(len);
                    input.drain(from..to);
                }
                4 if len > 0 => {
                    let from = rng.below(len);
                    let to = (from + 1 + rng.below(32)).min(len);
                    let piece = input[from..to].to_vec();
                    let at = rng.below(input.len() + 1);
                    input.splice(at..at, piece);
                }
                5 => {
                    let other = &seeds[rng.below(seeds.len())];
                    if !other.is_empty() {
                        let from = rng.below(other.len());
                        let to = (from + 1 + rng.below(64)).min(other.len());
                        let at = rng.below(len + 1);
                        input.splice(at..at, other[from..to].iter().copied());
                    }
                }
                6 if len > 0 => input.truncate(rng.below(len)),
                _ => {
                    let token = TOKENS[rng.below(TOKENS.len())];
                    let at = rng.below(len + 1);
                    input.splice(at..at, token.iter().copied());
                }
            }
        }
    }

    /// The committed seeds: `server/tests/fuzz/<target>/`.
    fn seeds_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
    }

    fn seed_files(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = seeds_dir().join(target);
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(&dir).expect("seed corpus").map(|e| e.expect("entry").path()).collect();
        files.sort();
        files.into_iter().map(|f| (f.clone(), std::fs::read(&f).expect("seed"))).collect()
    }

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        seed_files(target).into_iter().map(|(_, bytes)| bytes).collect()
    }

    fn executions() -> usize {
        std::env::var("FUZZ_EXECS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000)
    }

    /// Runs `check` on `execs` mutated seeds (and each seed as it is); a panic names the input.
    fn fuzz(target: &str, seeds: Vec<Vec<u8>>, check: impl Fn(&[u8])) {
        let seed = std::env::var("FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        }) | 1;
        let mut rng = Rng(crate::demo::Rng(seed));
        let execs = executions();
        let started = std::time::Instant::now();
        for s in &seeds {
            check(s);
        }
        let mut input = Vec::new();
        for _ in 0..execs {
            input.clear();
            input.extend_from_slice(&seeds[rng.below(seeds.len())]);
            mutate(&mut rng, &seeds, &mut input);
            if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input))) {
                eprintln!("fuzz {target}: seed {seed}: input {:?}", String::from_utf8_lossy(&input));
                std::panic::resume_unwind(panic);
            }
        }
        eprintln!(
            "fuzz {target}: {execs} inputs, 0 panics, {:.1} s (seed {seed})",
            started.elapsed().as_secs_f64()
        );
    }

    #[test]
    fn fuzz_ingest_body() {
        fuzz("ingest", corpus("ingest"), ingest_body);
    }

    #[test]
    fn fuzz_gzip_body() {
        fuzz("gzip", corpus("gzip"), gzip_body);
    }

    #[test]
    fn fuzz_query_strings() {
        fuzz("query", corpus("query"), query_string);
    }

    #[test]
    fn fuzz_otlp_exports() {
        let mut seeds = corpus("otlp_json");
        seeds.extend(corpus("otlp_protobuf"));
        fuzz("otlp", seeds, otlp_export);
    }

    /// The binary seeds are text seeds in another form, so they stay valid as the parsers change:
    /// each gzip seed inflates to the ingest seed of its name, each protobuf seed decodes to the
    /// request of the JSON seed of its name.
    #[test]
    fn binary_seeds_are_the_text_seeds() {
        let dir = seeds_dir();
        let gzip = seed_files("gzip");
        assert_eq!(gzip.len(), corpus("ingest").len(), "a gzip seed for each ingest seed");
        for (path, bytes) in gzip {
            let name = path.file_stem().expect("name");
            let plain = std::fs::read(dir.join("ingest").join(name)).expect("the ingest seed of that name");
            assert_eq!(ingest::inflate(&bytes, 1 << 20).expect("inflates"), plain, "{path:?}");
        }
        let protobuf = seed_files("otlp_protobuf");
        assert_eq!(protobuf.len(), corpus("otlp_json").len(), "a protobuf seed for each JSON seed");
        for (path, bytes) in protobuf {
            let name = path.with_extension("json");
            let json =
                std::fs::read(dir.join("otlp_json").join(name.file_name().expect("name"))).expect("json");
            let want = crate::otel::decode(Format::Json, &json).expect("the JSON seed decodes");
            assert_eq!(crate::otel::decode(Format::Protobuf, &bytes).expect("decodes"), want, "{path:?}");
        }
    }
}
