//! What a MorningCheck's namespace may use of the operator: the admin's policy.
//!
//! Many teams write MorningChecks; the operator must never be their confused deputy. A
//! MorningCheck's Kubernetes checks run as a ServiceAccount of its own namespace
//! (impersonated), unless the admin lets that namespace use the operator's identity. The
//! operator's AWS identity, role assumption, endpoint overrides and outbound hosts are
//! grants of the admin, each off (or open, for outbound hosts) by default. Everything here
//! is pure: [`Policy::grants`] resolves what one namespace may do, and the collectors ask
//! the resulting [`Grants`] before they send anything.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use wildmatch::WildMatch;

use crate::api::{AwsTarget, KubernetesTarget, MorningCheckSpec};
use crate::validate::Problem;

/// The ServiceAccount impersonated when `spec.serviceAccountName` is unset.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "morningcheck";

/// The admin's policy: the `tenancy:` section of the controller's config file, rendered
/// by the chart from its `tenancy` values.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub kubernetes: KubernetesPolicy,
    #[serde(default)]
    pub aws: AwsPolicy,
    #[serde(default)]
    pub outbound: OutboundPolicy,
}

/// Whose identity the local cluster's checks use.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesPolicy {
    /// Namespaces (globs) whose MorningChecks check the local cluster, and read their
    /// Secrets, with the operator's own identity. Default: none.
    #[serde(default)]
    pub operator_identity_namespaces: Vec<String>,
    /// ServiceAccount impersonated when a MorningCheck names none. Default: morningcheck.
    #[serde(default = "default_service_account")]
    pub default_service_account_name: String,
}

impl Default for KubernetesPolicy {
    fn default() -> Self {
        Self { operator_identity_namespaces: Vec::new(), default_service_account_name: default_service_account() }
    }
}

fn default_service_account() -> String {
    DEFAULT_SERVICE_ACCOUNT.into()
}

/// The operator's AWS identity (IRSA, Pod Identity, environment).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsPolicy {
    /// Namespaces (globs) whose MorningChecks may use the operator's AWS identity.
    /// Default (unset): the operator's own namespace only.
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// `roleArn` patterns (globs) each namespace may assume, keyed by namespace (a glob).
    /// Default: none, no role may be assumed.
    #[serde(default)]
    pub assume_roles: BTreeMap<String, Vec<String>>,
    /// Whether `endpointUrl` may override AWS's endpoints. Default: false.
    #[serde(default)]
    pub allow_endpoint_override: bool,
    /// With overrides allowed, the hosts (globs) an `endpointUrl` may name. Default: any.
    #[serde(default)]
    pub endpoint_hosts: Vec<String>,
}

/// Where Prometheus, Slack and remote-cluster URLs may point.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboundPolicy {
    /// Host names (globs, e.g. `*.monitoring.svc`) a URL may name.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Networks a URL's host may resolve into, e.g. 10.20.0.0/16.
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
}

/// A policy refusal: what was refused, under which setting, and how the admin grants it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}; refused by the operator's policy ({setting}): {grant}")]
pub struct Denial {
    pub what: String,
    /// The config key, e.g. `tenancy.aws.namespaces`.
    pub setting: &'static str,
    pub grant: String,
}

/// The identity a MorningCheck's local-cluster checks and Secret reads use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The operator's own ServiceAccount (granted namespaces, and `morningcheck run`).
    Operator,
    /// A ServiceAccount of the MorningCheck's namespace, impersonated.
    ServiceAccount { namespace: String, name: String },
}

impl Identity {
    /// The Kubernetes user name the apiserver sees, for `Impersonate-User`.
    pub fn user(&self) -> Option<String> {
        match self {
            Identity::Operator => None,
            Identity::ServiceAccount { namespace, name } => Some(format!("system:serviceaccount:{namespace}:{name}")),
        }
    }
}

/// Everything one namespace may do, resolved from the [`Policy`].
#[derive(Debug, Clone, PartialEq)]
pub struct Grants {
    /// The namespace, for messages; `None` for `morningcheck run`, which runs with its
    /// user's own credentials and is not limited.
    pub namespace: Option<String>,
    pub identity: Identity,
    pub aws_identity: bool,
    pub assume_roles: Vec<String>,
    pub endpoint_override: EndpointOverride,
    pub outbound: Outbound,
}

/// Whether `endpointUrl` may be used, and where to.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointOverride {
    Denied,
    Any,
    Hosts(Vec<String>),
}

/// The outbound allow-list; both lists empty allows any host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outbound {
    pub hosts: Vec<String>,
    pub cidrs: Vec<IpNet>,
}

/// How a URL's host fares against the outbound allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostVerdict {
    Allowed,
    /// A name that only the allowed networks could admit: resolve it and ask
    /// [`Grants::address_allowed`] of every address.
    Resolve,
    Denied(Denial),
}

impl Policy {
    /// Checks the policy itself: every CIDR parses. Called once at start-up.
    pub fn check(&self) -> Result<(), String> {
        for c in &self.outbound.allowed_cidrs {
            c.parse::<IpNet>().map_err(|e| format!("tenancy.outbound.allowedCidrs: {c:?}: {e}"))?;
        }
        if self.kubernetes.default_service_account_name.is_empty() {
            return Err("tenancy.kubernetes.defaultServiceAccountName is empty".into());
        }
        Ok(())
    }

    /// What the MorningChecks of `namespace` may do; `operator_namespace` is where the
    /// operator runs (the default of `aws.namespaces`).
    pub fn grants(&self, namespace: &str, operator_namespace: &str, spec: &MorningCheckSpec) -> Grants {
        let identity = match (&spec.service_account_name, any(&self.kubernetes.operator_identity_namespaces, namespace))
        {
            (None, true) => Identity::Operator,
            (name, _) => Identity::ServiceAccount {
                namespace: namespace.into(),
                name: name.clone().unwrap_or_else(|| self.kubernetes.default_service_account_name.clone()),
            },
        };
        let aws_identity = match &self.aws.namespaces {
            Some(list) => any(list, namespace),
            None => namespace == operator_namespace,
        };
        let assume_roles = self
            .aws
            .assume_roles
            .iter()
            .filter(|(ns, _)| WildMatch::new(ns).matches(namespace))
            .flat_map(|(_, roles)| roles.iter().cloned())
            .collect();
        let endpoint_override = match (self.aws.allow_endpoint_override, self.aws.endpoint_hosts.is_empty()) {
            (false, _) => EndpointOverride::Denied,
            (true, true) => EndpointOverride::Any,
            (true, false) => EndpointOverride::Hosts(self.aws.endpoint_hosts.clone()),
        };
        Grants {
            namespace: Some(namespace.into()),
            identity,
            aws_identity,
            assume_roles,
            endpoint_override,
            outbound: Outbound {
                hosts: self.outbound.allowed_hosts.clone(),
                cidrs: self.outbound.allowed_cidrs.iter().filter_map(|c| c.parse().ok()).collect(),
            },
        }
    }
}

fn any(globs: &[String], value: &str) -> bool {
    globs.iter().any(|g| WildMatch::new(g).matches(value))
}

impl Grants {
    /// `morningcheck run`: the user's own credentials, nothing borrowed, nothing limited.
    pub fn unrestricted() -> Self {
        Self {
            namespace: None,
            identity: Identity::Operator,
            aws_identity: true,
            assume_roles: vec!["*".into()],
            endpoint_override: EndpointOverride::Any,
            outbound: Outbound::default(),
        }
    }

    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }

    /// Whether an AWS target may run: the identity, its role and its endpoint. Checked
    /// before any credential is loaded or any request is sent.
    pub fn aws(&self, target: &AwsTarget) -> Result<(), Denial> {
        let ns = self.ns();
        if !self.aws_identity {
            return Err(Denial {
                what: format!("namespace {ns} may not use the operator's AWS identity"),
                setting: "tenancy.aws.namespaces",
                grant: format!("an admin lists {ns} in the chart value tenancy.aws.namespaces"),
            });
        }
        if let Some(role) = &target.role_arn
            && !any(&self.assume_roles, role)
        {
            return Err(Denial {
                what: format!("namespace {ns} may not assume role {role}"),
                setting: "tenancy.aws.assumeRoles",
                grant: format!(
                    "an admin adds a pattern matching it under {ns} in the chart value tenancy.aws.assumeRoles"
                ),
            });
        }
        if let Some(url) = &target.endpoint_url {
            let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
            let denied = match &self.endpoint_override {
                EndpointOverride::Any => None,
                EndpointOverride::Denied => Some("tenancy.aws.allowEndpointOverride"),
                EndpointOverride::Hosts(hosts) if any(hosts, &host) => None,
                EndpointOverride::Hosts(_) => Some("tenancy.aws.endpointHosts"),
            };
            if let Some(setting) = denied {
                return Err(Denial {
                    what: format!("endpointUrl with host {host:?} may not replace AWS's endpoints"),
                    setting,
                    grant: "an admin sets the chart value tenancy.aws.allowEndpointOverride to true, and lists the host in tenancy.aws.endpointHosts when that list is used".into(),
                });
            }
        }
        Ok(())
    }

    /// Whether a URL's host is on the outbound allow-list, as far as its text tells.
    pub fn host(&self, host: &str, what: &str) -> HostVerdict {
        let o = &self.outbound;
        if o.hosts.is_empty() && o.cidrs.is_empty() {
            return HostVerdict::Allowed;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return match self.address_allowed(ip, what) {
                Ok(()) => HostVerdict::Allowed,
                Err(d) => HostVerdict::Denied(d),
            };
        }
        if any(&o.hosts, &host.to_ascii_lowercase()) {
            HostVerdict::Allowed
        } else if o.cidrs.is_empty() {
            HostVerdict::Denied(self.outbound_denial(host, what))
        } else {
            HostVerdict::Resolve
        }
    }

    /// Whether an address (a literal, or one a name resolved to) is in an allowed network.
    pub fn address_allowed(&self, ip: IpAddr, what: &str) -> Result<(), Denial> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if self.outbound.cidrs.iter().any(|n| n.contains(&ip)) {
            Ok(())
        } else {
            Err(self.outbound_denial(&ip.to_string(), what))
        }
    }

    fn outbound_denial(&self, host: &str, what: &str) -> Denial {
        Denial {
            what: format!("{what} host {host} is not on the outbound allow-list"),
            setting: "tenancy.outbound",
            grant: "an admin adds the host to the chart value tenancy.outbound.allowedHosts, or its network to tenancy.outbound.allowedCidrs".into(),
        }
    }

    /// The local cluster's target as this identity sees it: a namespace's ServiceAccount
    /// looks at its own namespace unless the target names others, and lists nodes only
    /// when asked to (a namespace's ServiceAccount can't, unless granted).
    pub fn scope(&self, target: &KubernetesTarget) -> KubernetesTarget {
        let mut t = target.clone();
        if t.kubeconfig_secret_ref.is_some() {
            return t;
        }
        if let Identity::ServiceAccount { namespace, .. } = &self.identity {
            if t.namespaces.include.is_empty() {
                t.namespaces.include = vec![namespace.clone()];
            }
            t.checks.nodes.get_or_insert(false);
        }
        t
    }
}

/// The spec's refusals by the policy, field by field: shown as `Ready=False`
/// (`PolicyDenied`) and a Warning Event. The refused targets fail with tier
/// `PolicyDenied` when the run comes; the others run.
pub fn refusals(spec: &MorningCheckSpec, grants: &Grants) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, a) in spec.targets.aws.iter().enumerate() {
        if let Err(d) = grants.aws(a) {
            out.push(Problem { field: format!("spec.targets.aws[{i}]"), message: d.to_string() });
        }
    }
    let urls =
        spec.targets.prometheus.iter().enumerate().map(|(i, p)| (format!("spec.targets.prometheus[{i}].url"), &p.url));
    for (field, url) in urls {
        let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
        if let HostVerdict::Denied(d) = grants.host(&host, "Prometheus URL") {
            out.push(Problem { field, message: d.to_string() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> MorningCheckSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn policy(yaml: &str) -> Policy {
        let p: Policy = serde_saphyr::from_str(yaml).unwrap();
        p.check().unwrap();
        p
    }

    const LOCAL: &str = "schedule: '@daily'\ntargets: {kubernetes: [{name: local}]}\n";

    fn aws(extra: &str) -> AwsTarget {
        serde_saphyr::from_str(&format!("{{name: a, regions: [eu-west-1]{extra}}}")).unwrap()
    }

    #[test]
    fn tenants_are_impersonated_by_default() {
        let g = Policy::default().grants("team-a", "platform", &spec(LOCAL));
        assert_eq!(g.identity, Identity::ServiceAccount { namespace: "team-a".into(), name: "morningcheck".into() });
        assert_eq!(g.identity.user().unwrap(), "system:serviceaccount:team-a:morningcheck");
        let named = spec(&format!("{LOCAL}serviceAccountName: checker\n"));
        let g = Policy::default().grants("team-a", "platform", &named);
        assert_eq!(g.identity.user().unwrap(), "system:serviceaccount:team-a:checker");
    }

    #[test]
    fn listed_namespaces_use_the_operator_unless_they_name_an_account() {
        let p = policy("kubernetes: {operatorIdentityNamespaces: [platform, 'ops-*']}");
        assert_eq!(p.grants("platform", "x", &spec(LOCAL)).identity, Identity::Operator);
        assert_eq!(p.grants("ops-eu", "x", &spec(LOCAL)).identity, Identity::Operator);
        assert!(matches!(p.grants("team-a", "x", &spec(LOCAL)).identity, Identity::ServiceAccount { .. }));
        let named = spec(&format!("{LOCAL}serviceAccountName: narrow\n"));
        assert!(matches!(p.grants("platform", "x", &named).identity, Identity::ServiceAccount { .. }));
    }

    #[test]
    fn a_tenant_looks_at_its_own_namespace_and_not_at_nodes() {
        let g = Policy::default().grants("team-a", "platform", &spec(LOCAL));
        let t: KubernetesTarget = serde_saphyr::from_str("{name: local}").unwrap();
        let s = g.scope(&t);
        assert_eq!(s.namespaces.include, ["team-a"]);
        assert_eq!(s.checks.nodes, Some(false));
        let asked: KubernetesTarget =
            serde_saphyr::from_str("{name: local, namespaces: {include: [b]}, checks: {nodes: true}}").unwrap();
        let s = g.scope(&asked);
        assert_eq!((s.namespaces.include, s.checks.nodes), (vec!["b".to_string()], Some(true)));
        let op = Grants::unrestricted().scope(&t);
        assert!(op.namespaces.include.is_empty());
        assert_eq!(op.checks.nodes, None);
        let remote: KubernetesTarget =
            serde_saphyr::from_str("{name: r, kubeconfigSecretRef: {name: kc, key: k}}").unwrap();
        assert_eq!(g.scope(&remote), remote);
    }

    #[test]
    fn aws_identity_is_the_operator_namespace_s_by_default() {
        let s = spec(LOCAL);
        assert!(Policy::default().grants("platform", "platform", &s).aws(&aws("")).is_ok());
        let d = Policy::default().grants("team-a", "platform", &s).aws(&aws("")).unwrap_err();
        assert_eq!(d.setting, "tenancy.aws.namespaces");
        assert!(d.to_string().contains("namespace team-a may not use the operator's AWS identity"), "{d}");
        let p = policy("aws: {namespaces: ['team-*']}");
        assert!(p.grants("team-a", "platform", &s).aws(&aws("")).is_ok());
        assert!(p.grants("platform", "platform", &s).aws(&aws("")).is_err());
    }

    #[test]
    fn roles_need_a_pattern_of_their_namespace() {
        let s = spec(LOCAL);
        let role = ", roleArn: 'arn:aws:iam::123456789012:role/team-a-read'";
        let d = Policy::default().grants("platform", "platform", &s).aws(&aws(role)).unwrap_err();
        assert_eq!(d.setting, "tenancy.aws.assumeRoles");
        let p = policy(
            "aws: {namespaces: ['*'], assumeRoles: {team-a: ['arn:aws:iam::123456789012:role/team-a-*'], 'ops-*': ['*']}}",
        );
        assert!(p.grants("team-a", "x", &s).aws(&aws(role)).is_ok());
        assert!(p.grants("team-b", "x", &s).aws(&aws(role)).is_err());
        assert!(p.grants("ops-1", "x", &s).aws(&aws(role)).is_ok());
        let other = ", roleArn: 'arn:aws:iam::123456789012:role/team-b-read'";
        assert!(p.grants("team-a", "x", &s).aws(&aws(other)).is_err());
    }

    #[test]
    fn endpoint_overrides_are_off_unless_allowed() {
        let s = spec(LOCAL);
        let ep = ", endpointUrl: 'http://127.0.0.1:15000'";
        let d = Policy::default().grants("platform", "platform", &s).aws(&aws(ep)).unwrap_err();
        assert_eq!(d.setting, "tenancy.aws.allowEndpointOverride");
        let p = policy("aws: {allowEndpointOverride: true}");
        assert!(p.grants("platform", "platform", &s).aws(&aws(ep)).is_ok());
        let p = policy("aws: {allowEndpointOverride: true, endpointHosts: ['*.amazonaws.com']}");
        assert_eq!(
            p.grants("platform", "platform", &s).aws(&aws(ep)).unwrap_err().setting,
            "tenancy.aws.endpointHosts"
        );
        let vpce = ", endpointUrl: 'https://ec2.eu-west-1.amazonaws.com'";
        assert!(p.grants("platform", "platform", &s).aws(&aws(vpce)).is_ok());
        assert!(Grants::unrestricted().aws(&aws(&format!("{ep}{}", ", roleArn: 'arn:aws:iam::1:role/x'"))).is_ok());
    }

    #[test]
    fn outbound_hosts_and_networks() {
        let s = spec(LOCAL);
        assert_eq!(Policy::default().grants("a", "p", &s).host("anything.internal", "x"), HostVerdict::Allowed);
        let p =
            policy("outbound: {allowedHosts: ['*.monitoring.svc', 'hooks.slack.com'], allowedCidrs: [10.20.0.0/16]}");
        let g = p.grants("a", "p", &s);
        assert_eq!(g.host("prometheus.monitoring.svc", "x"), HostVerdict::Allowed);
        assert_eq!(g.host("HOOKS.slack.com", "x"), HostVerdict::Allowed);
        assert_eq!(g.host("10.20.3.4", "x"), HostVerdict::Allowed);
        assert_eq!(g.host("[::ffff:10.20.3.4]", "x"), HostVerdict::Allowed);
        assert!(matches!(g.host("169.254.169.254", "x"), HostVerdict::Denied(_)));
        assert_eq!(g.host("vault.internal", "x"), HostVerdict::Resolve);
        let hosts_only = policy("outbound: {allowedHosts: ['*.monitoring.svc']}").grants("a", "p", &s);
        let HostVerdict::Denied(d) = hosts_only.host("vault.internal", "Prometheus URL") else { panic!() };
        assert_eq!(
            d.to_string(),
            "Prometheus URL host vault.internal is not on the outbound allow-list; refused by the operator's policy (tenancy.outbound): an admin adds the host to the chart value tenancy.outbound.allowedHosts, or its network to tenancy.outbound.allowedCidrs"
        );
        let bad: Policy = serde_saphyr::from_str("outbound: {allowedCidrs: [nonsense]}").unwrap();
        assert!(bad.check().unwrap_err().contains("allowedCidrs"));
    }

    #[test]
    fn refusals_name_their_fields() {
        let s = spec(
            "schedule: '@daily'\ntargets:\n  prometheus: [{name: p, url: 'http://vault.internal:8200'}, {name: q, url: 'http://prometheus.monitoring.svc:9090'}]\n  aws: [{name: a, regions: [eu-west-1]}]\n",
        );
        let p = policy("outbound: {allowedHosts: ['*.monitoring.svc']}");
        let r = refusals(&s, &p.grants("team-a", "platform", &s));
        let fields: Vec<&str> = r.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["spec.targets.aws[0]", "spec.targets.prometheus[0].url"]);
        assert!(refusals(&s, &Grants::unrestricted()).is_empty());
    }

    #[test]
    fn unknown_policy_keys_are_refused() {
        assert!(serde_saphyr::from_str::<Policy>("aws: {namespace: [a]}").is_err());
    }
}
