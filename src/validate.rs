//! Validation of what the CRD schema cannot express: cron syntax, time zones, references,
//! uniqueness and thresholds. Pure; every problem names its field.

use std::collections::HashSet;
use std::fmt;

use crate::api::{Direction, LabelMatcher, MorningCheckSpec, PromQuery, SecretKeyRef};
use crate::schedule::{Schedule, ScheduleError};

/// One problem of a spec, with the path of the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The verdict on an invalid spec: a condition reason and every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct Invalid {
    /// InvalidSchedule, InvalidTimeZone or InvalidSpec.
    pub reason: &'static str,
    pub problems: Vec<Problem>,
}

impl Invalid {
    pub fn message(&self) -> String {
        self.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
    }
}

struct Checker {
    problems: Vec<Problem>,
    reason: Option<&'static str>,
}

impl Checker {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { field: field.into(), message: message.into() });
    }

    fn secret(&mut self, field: &str, r: &SecretKeyRef, namespace: &str) {
        if let Some(other) = r.namespace.as_deref().filter(|o| *o != namespace) {
            self.add(
                format!("{field}.namespace"),
                format!("Secret {other}/{} is in another namespace; Secrets are only read from the MorningCheck's own namespace {namespace:?}", r.name),
            );
        }
    }
}

/// Validates a spec of a MorningCheck in `namespace` and returns its parsed schedule.
pub fn validate(spec: &MorningCheckSpec, namespace: &str) -> Result<Schedule, Invalid> {
    let mut c = Checker { problems: Vec::new(), reason: None };
    let schedule = match Schedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
        Ok(s) => Some(s),
        Err(e @ ScheduleError::InvalidSchedule { .. }) => {
            c.reason = Some("InvalidSchedule");
            c.add("spec.schedule", e.to_string());
            None
        }
        Err(e @ ScheduleError::InvalidTimeZone { .. }) => {
            c.reason = Some("InvalidTimeZone");
            c.add("spec.timeZone", e.to_string());
            None
        }
    };
    targets(&mut c, spec, namespace);
    if let Some(slack) = &spec.slack {
        c.secret("spec.slack.webhookSecretRef", &slack.webhook_secret_ref, namespace);
    }
    match (schedule, c.problems.is_empty()) {
        (Some(s), true) => Ok(s),
        _ => Err(Invalid { reason: c.reason.unwrap_or("InvalidSpec"), problems: c.problems }),
    }
}

fn targets(c: &mut Checker, spec: &MorningCheckSpec, ns: &str) {
    let t = &spec.targets;
    if t.kubernetes.is_empty() && t.prometheus.is_empty() && t.aws.is_empty() {
        c.add("spec.targets", "no targets: name at least one kubernetes, prometheus or aws target");
    }
    let mut names = HashSet::new();
    let all = t
        .kubernetes
        .iter()
        .map(|k| ("kubernetes", &k.name))
        .chain(t.prometheus.iter().map(|p| ("prometheus", &p.name)))
        .chain(t.aws.iter().map(|a| ("aws", &a.name)));
    for (kind, name) in all {
        if !names.insert(name.as_str()) {
            c.add(
                format!("spec.targets.{kind}"),
                format!("duplicate target name {name:?}: names must be unique across all targets"),
            );
        }
    }
    for (i, k) in t.kubernetes.iter().enumerate() {
        let f = format!("spec.targets.kubernetes[{i}]");
        if let Some(r) = &k.kubeconfig_secret_ref {
            c.secret(&format!("{f}.kubeconfigSecretRef"), r, ns);
        }
        for (list, values) in [("include", &k.namespaces.include), ("exclude", &k.namespaces.exclude)] {
            if let Some(bad) = values.iter().find(|n| !is_dns_label(n)) {
                c.add(format!("{f}.namespaces.{list}"), format!("{bad:?} is not a valid namespace name"));
            }
        }
        if let Some(sel) = &k.label_selector
            && let Err(m) = check_selector(sel)
        {
            c.add(format!("{f}.labelSelector"), m);
        }
    }
    for (i, p) in t.prometheus.iter().enumerate() {
        let f = format!("spec.targets.prometheus[{i}]");
        match url::Url::parse(&p.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => c.add(format!("{f}.url"), format!("{:?} is not an http(s) URL", p.url)),
        }
        if let Some(auth) = &p.auth {
            if auth.bearer_token_secret_ref.is_some() && auth.basic.is_some() {
                c.add(format!("{f}.auth"), "set either bearerTokenSecretRef or basic, not both");
            }
            if let Some(r) = &auth.bearer_token_secret_ref {
                c.secret(&format!("{f}.auth.bearerTokenSecretRef"), r, ns);
            }
            if let Some(b) = &auth.basic {
                c.secret(&format!("{f}.auth.basic.passwordSecretRef"), &b.password_secret_ref, ns);
            }
        }
        if let Some(r) = &p.ca_secret_ref {
            c.secret(&format!("{f}.caSecretRef"), r, ns);
        }
        for (list, matchers) in [("include", &p.alerts.include), ("exclude", &p.alerts.exclude)] {
            for (j, m) in matchers.iter().enumerate() {
                if let Err(e) = matcher_regex(m) {
                    c.add(format!("{f}.alerts.{list}[{j}].value"), format!("invalid regular expression: {e}"));
                }
            }
        }
        let mut qnames = HashSet::new();
        for (j, q) in p.queries.iter().enumerate() {
            let qf = format!("{f}.queries[{j}]");
            if !qnames.insert(q.name.as_str()) {
                c.add(format!("{qf}.name"), format!("duplicate query name {:?}", q.name));
            }
            query(c, &qf, q);
        }
    }
    for (i, a) in t.aws.iter().enumerate() {
        let f = format!("spec.targets.aws[{i}]");
        let mut seen = HashSet::new();
        for r in &a.regions {
            if !is_region(r) {
                c.add(format!("{f}.regions"), format!("{r:?} is not an AWS region name (e.g. eu-west-1)"));
            } else if !seen.insert(r) {
                c.add(format!("{f}.regions"), format!("region {r:?} is listed twice"));
            }
        }
        if a.external_id.is_some() && a.role_arn.is_none() {
            c.add(format!("{f}.externalId"), "externalId needs roleArn");
        }
    }
}

fn query(c: &mut Checker, f: &str, q: &PromQuery) {
    if q.query.is_none() && q.preset.is_none() {
        c.add(format!("{f}.query"), "set query (a PromQL expression) or preset");
    }
    if q.preset.is_none() && q.warning.is_none() && q.critical.is_none() {
        c.add(f.to_string(), "a threshold needs a value: set warning, critical or both");
    }
    for (name, v) in [("warning", q.warning), ("critical", q.critical)] {
        if v.is_some_and(|v| !v.is_finite()) {
            c.add(format!("{f}.{name}"), "threshold must be a finite number");
        }
    }
    if let (Some(w), Some(cr)) = (q.warning, q.critical) {
        let below = q.direction == Some(Direction::Below);
        if (!below && w > cr) || (below && w < cr) {
            let dir = if below { "below" } else { "above" };
            c.add(format!("{f}.warning"), format!("warning {w} is past critical {cr} for direction {dir}"));
        }
    }
}

/// Compiles a label matcher's regular expression (anchored at both ends).
pub fn matcher_regex(m: &LabelMatcher) -> Result<Option<regex::Regex>, regex::Error> {
    if !m.regex {
        return Ok(None);
    }
    regex::Regex::new(&format!("^(?:{})$", m.value)).map(Some)
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// A light syntax check of a label selector (the apiserver has the final word).
fn check_selector(sel: &str) -> Result<(), String> {
    if sel.trim().is_empty() {
        return Err("empty label selector; remove the field to select everything".into());
    }
    let mut depth = 0i32;
    for ch in sel.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    if depth != 0 {
        return Err(format!("{sel:?}: unbalanced parentheses"));
    }
    if sel.contains(",,") || sel.starts_with(',') || sel.ends_with(',') {
        return Err(format!("{sel:?}: empty requirement between commas"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::*;

    fn spec(yaml: &str) -> MorningCheckSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const BASE: &str = "schedule: '0 7 * * *'\ntargets:\n  kubernetes: [{name: local}]\n";

    #[test]
    fn valid_spec_passes() {
        assert!(validate(&spec(BASE), "ns").is_ok());
    }

    #[test]
    fn invalid_schedule_and_zone_have_reasons() {
        let e = validate(&spec(&BASE.replace("0 7 * * *", "0 0 7 * * *")), "ns").unwrap_err();
        assert_eq!(e.reason, "InvalidSchedule");
        assert!(
            e.message().starts_with("spec.schedule: invalid schedule \"0 0 7 * * *\": expected 5 fields"),
            "{}",
            e.message()
        );
        let e = validate(&spec(&format!("{BASE}timeZone: Europe/Nowhere\n")), "ns").unwrap_err();
        assert_eq!(e.reason, "InvalidTimeZone");
        assert_eq!(e.message(), "spec.timeZone: invalid timeZone \"Europe/Nowhere\": not an IANA time zone name");
    }

    #[test]
    fn every_problem_is_named() {
        let s = spec(
            "schedule: '@daily'\ntargets:\n  kubernetes: [{name: a, kubeconfigSecretRef: {name: kc, key: k, namespace: other}}]\n  prometheus:\n  - name: a\n    url: 'http://p:9090'\n    queries: [{name: q, query: up}, {name: q, query: up, warning: 2, critical: 1}]\n  aws: [{name: b, regions: [eu-west-1, eu-west-1, mars]}]\n",
        );
        let e = validate(&s, "ns").unwrap_err();
        assert_eq!(e.reason, "InvalidSpec");
        let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.targets.prometheus",
                "spec.targets.kubernetes[0].kubeconfigSecretRef.namespace",
                "spec.targets.prometheus[0].queries[0]",
                "spec.targets.prometheus[0].queries[1].name",
                "spec.targets.prometheus[0].queries[1].warning",
                "spec.targets.aws[0].regions",
                "spec.targets.aws[0].regions",
            ]
        );
        assert!(e.message().contains("a threshold needs a value"));
    }

    #[test]
    fn empty_targets_rejected() {
        let e = validate(&spec("schedule: '@daily'\ntargets: {}\n"), "ns").unwrap_err();
        assert_eq!(e.message(), "spec.targets: no targets: name at least one kubernetes, prometheus or aws target");
    }

    #[test]
    fn bad_regex_and_selector_and_namespace() {
        let s = spec(
            "schedule: '@daily'\ntargets:\n  kubernetes: [{name: a, labelSelector: 'app in (a,b', namespaces: {include: [Prod]}}]\n  prometheus: [{name: p, url: 'http://p', alerts: {exclude: [{label: alertname, value: '(', regex: true}]}}]\n",
        );
        let e = validate(&s, "ns").unwrap_err();
        let msg = e.message();
        assert!(
            msg.contains("spec.targets.kubernetes[0].namespaces.include: \"Prod\" is not a valid namespace name"),
            "{msg}"
        );
        assert!(msg.contains("unbalanced parentheses"), "{msg}");
        assert!(
            msg.contains("spec.targets.prometheus[0].alerts.exclude[0].value: invalid regular expression"),
            "{msg}"
        );
    }

    #[test]
    fn preset_needs_no_threshold() {
        let s = spec(
            "schedule: '@daily'\ntargets:\n  prometheus: [{name: p, url: 'http://p', queries: [{name: hot, preset: hot-nodes}]}]\n",
        );
        assert!(validate(&s, "ns").is_ok());
    }
}
