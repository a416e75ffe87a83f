//! The server's library: the HTTP routes, OTLP ingest, the demo generator and the embedded
//! site. `tokentally` (src/main.rs) is the command line around it; the coverage-guided fuzz
//! targets (`server/fuzz`) call the parsers through [`fuzz`].

pub mod assets;
pub mod demo;
pub mod fuzz;
pub mod http;
pub mod otel;
