//! Logging: plain or JSON lines on stderr, filtered like `RUST_LOG`.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Plain,
    Json,
}

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => {
            registry.with(fmt::layer().json().with_writer(std::io::stderr).with_current_span(true)).try_init()
        }
        LogFormat::Plain => registry.with(fmt::layer().with_writer(std::io::stderr)).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
