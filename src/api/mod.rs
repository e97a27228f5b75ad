//! The `MorningCheck` custom resource: what to check, when, and where to report.
//!
//! Everything the apiserver can validate is in the schema: bounds on every number, string
//! and list, patterns, enums, required fields, and CEL rules (`x-kubernetes-validations`)
//! for what spans fields (unique target names, one auth method, threshold order, …).
//! `morningcheck run` applies the same schema and rules ([`crate::admission`]). What the
//! schema can't say (cron syntax, time zones, Secrets' namespaces, label selectors,
//! regular expressions) is validated by the controller in [`crate::validate`].

mod prometheus;
mod report;
mod spec;
mod status;

pub use prometheus::*;
pub use report::*;
pub use spec::*;
pub use status::*;

pub const GROUP: &str = "morningcheck.io";
/// The schema of a run report: the CRD's version, as `morningcheck run -o json` writes it.
pub const SCHEMA_VERSION: &str = "morningcheck.io/v1alpha1";
/// Annotation that triggers one run; its value is a token that runs at most once.
pub const RUN_NOW_ANNOTATION: &str = "morningcheck.io/run-now";
/// Most targets of each kind (`maxItems` of `spec.targets.kubernetes`, `.prometheus`, `.aws`).
pub const MAX_TARGETS_PER_KIND: usize = 100;

/// Pattern of target and query names: no `/`, no control characters (a name is shown in
/// the status, the digest and metric labels). Target names are stricter still.
pub(crate) const PRINTABLE_NAME: &str = r"^[^/\x00-\x1F\x7F-\x9F]+$";
/// Pattern of target names: lowercase letters, digits, `-` and `.`.
pub(crate) const TARGET_NAME: &str = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";
/// A namespace name, or a glob of one: `*` and `?` may stand for any of its characters.
pub(crate) const NAMESPACE_GLOB: &str = r"^[a-z0-9*?]([-a-z0-9*?]*[a-z0-9*?])?$";
/// A DNS label (RFC 1123), as namespace names.
pub(crate) const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A DNS subdomain (RFC 1123), as Secret names.
pub(crate) const DNS_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// An http(s) URL with a host.
pub(crate) const HTTP_URL: &str = r"^https?://[^\s/?#]+([/?#]\S*)?$";

/// The CEL rule of every URL field: credentials never ride in a URL, where anyone who can
/// read the MorningCheck would see them.
pub(crate) fn no_userinfo() -> kube::core::Rule {
    kube::core::Rule::new("!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')")
        .message("the URL carries credentials (user:password@); remove them and use a Secret: auth.basic or auth.bearerTokenSecretRef for Prometheus, the credential chain or roleArn for AWS")
        .reason(kube::core::Reason::FieldValueForbidden)
}

pub(crate) fn default_true() -> bool {
    true
}
