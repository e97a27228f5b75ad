//! Logging: plain or JSON lines on stderr, filtered like `RUST_LOG`. Every line passes
//! through [`crate::redact::secrets`], so no log level prints a credential; colours only
//! on a terminal, so `kubectl logs` reads clean.

use std::io::{IsTerminal, Write};

use tracing_subscriber::fmt::MakeWriter;
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(with_quiet_sdks(default_filter)));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(Scrubbed).with_current_span(true).with_span_list(true))
            .try_init(),
        LogFormat::Plain => {
            registry.with(fmt::layer().with_ansi(std::io::stderr().is_terminal()).with_writer(Scrubbed)).try_init()
        }
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// The AWS SDK's own warnings repeat a whole credential chain, kilobytes per line: below
/// debug they are left to our one line per target. `debug` or `trace` shows them all.
fn with_quiet_sdks(filter: &str) -> String {
    if filter.contains("debug") || filter.contains("trace") {
        return filter.to_string();
    }
    format!("{filter},aws_config=error,aws_smithy_runtime=error,aws_sdk_ec2=error,aws_sdk_sts=error")
}

/// Stderr, one scrubbed event at a time.
struct Scrubbed;

impl<'a> MakeWriter<'a> for Scrubbed {
    type Writer = Line;

    fn make_writer(&'a self) -> Self::Writer {
        Line(Vec::with_capacity(256))
    }
}

/// One event's text, written to stderr scrubbed when the formatter is done with it.
struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = crate::redact::secrets(&String::from_utf8_lossy(&self.0));
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}
