//! Placeholder, replaced by the collector's issue.
