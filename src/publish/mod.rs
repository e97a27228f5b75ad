//! Outputs of a run: the Slack digest, and the text and JSON reports of `morningcheck run`.

pub mod slack;
pub mod text;

use crate::api::{RunReport, RunResult};

/// What a run is missing besides its verdict, e.g. " · 1 target unchecked": how the
/// digest's header and the text report's first line show that some targets could not be
/// checked. Nothing when every target was, or when nothing was (the verdict says Failed).
pub fn unchecked_suffix(report: &RunReport) -> String {
    match report.unchecked_targets {
        0 => String::new(),
        _ if report.result == RunResult::Failed => String::new(),
        1 => " · 1 target unchecked".to_string(),
        n => format!(" · {n} targets unchecked"),
    }
}
