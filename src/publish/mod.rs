//! Outputs of a run: the Slack digest, and the text and JSON reports of `morningcheck run`.

pub mod slack;
pub mod text;
