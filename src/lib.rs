//! morningcheck: the morning check of Kubernetes clusters, Prometheus and EC2, as a
//! Kubernetes operator and as a one-shot command.
//!
//! The pipeline is collect (IO, [`collect`]) → evaluate (pure, [`evaluate`]) → publish
//! ([`publish`]); the controller ([`controller`]) runs it on a schedule ([`schedule`]).

pub mod admission;
pub mod api;
pub mod cli;
pub mod clip;
pub mod clock;
pub mod collect;
pub mod controller;
pub mod crd;
pub mod duration;
pub mod errors;
pub mod evaluate;
pub mod metrics;
pub mod net;
pub mod publish;
pub mod redact;
pub mod schedule;
pub mod server;
pub mod telemetry;
pub mod tenancy;
pub mod validate;

pub use api::{MorningCheck, MorningCheckSpec, MorningCheckStatus};

/// Installs aws-lc-rs as the process' rustls crypto provider. Only one provider is in
/// the dependency tree; installing it explicitly keeps it that way at start-up.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
