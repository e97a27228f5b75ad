//! Validation of what the CRD's schema and CEL rules cannot express: cron syntax and
//! schedules that never fire, time zones, Secrets' namespaces, label selectors, regular
//! expressions, URLs. Pure; every problem names its field. Bounds, patterns, unique names,
//! auth methods and thresholds are the apiserver's (and `morningcheck run`'s, through
//! [`crate::admission`]).

mod selector;

use std::fmt;

use crate::api::{LabelMatcher, MorningCheckSpec, SecretKeyRef};
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
        if let Some(hook) = &slack.webhook_secret_ref {
            c.secret("spec.slack.webhookSecretRef", hook, namespace);
        }
        if let Some(app) = &slack.app {
            c.secret("spec.slack.app.tokenSecretRef", &app.token_secret_ref, namespace);
        }
    }
    match (schedule, c.problems.is_empty()) {
        (Some(s), true) => Ok(s),
        _ => Err(Invalid { reason: c.reason.unwrap_or("InvalidSpec"), problems: c.problems }),
    }
}

fn targets(c: &mut Checker, spec: &MorningCheckSpec, ns: &str) {
    let t = &spec.targets;
    for (i, k) in t.kubernetes.iter().enumerate() {
        let f = format!("spec.targets.kubernetes[{i}]");
        if let Some(r) = &k.kubeconfig_secret_ref {
            c.secret(&format!("{f}.kubeconfigSecretRef"), r, ns);
        }
        if let Some(sel) = &k.label_selector
            && let Err(m) = selector::check(sel)
        {
            c.add(format!("{f}.labelSelector"), format!("invalid label selector {sel:?}: {m}"));
        }
    }
    for (i, p) in t.prometheus.iter().enumerate() {
        let f = format!("spec.targets.prometheus[{i}]");
        match url::Url::parse(&p.url) {
            Ok(u) if has_userinfo(&u) => c.add(format!("{f}.url"), USERINFO),
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => c.add(format!("{f}.url"), format!("{:?} is not an http(s) URL with a host", p.url)),
            Err(e) => c.add(format!("{f}.url"), format!("{:?} is not a valid URL: {e}", p.url)),
        }
        if let Some(auth) = &p.auth {
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
        for (j, q) in p.queries.iter().enumerate() {
            for (name, v) in [("warning", q.warning), ("critical", q.critical)] {
                if v.is_some_and(|v| !v.is_finite()) {
                    c.add(format!("{f}.queries[{j}].{name}"), "threshold must be a finite number");
                }
            }
        }
    }
    for (i, a) in t.aws.iter().enumerate() {
        if let Some(e) = &a.endpoint_url {
            match url::Url::parse(e) {
                Ok(u) if has_userinfo(&u) => c.add(format!("spec.targets.aws[{i}].endpointUrl"), USERINFO),
                Ok(_) => {}
                Err(_) => c.add(format!("spec.targets.aws[{i}].endpointUrl"), format!("{e:?} is not a valid URL")),
            }
        }
    }
}

/// What a URL with credentials in it is told: anyone who can read the MorningCheck would
/// read them.
pub const USERINFO: &str = "the URL carries credentials (user:password@), which anyone who can read the MorningCheck would see; remove them and use a Secret: auth.basic or auth.bearerTokenSecretRef for Prometheus, the credential chain or roleArn for AWS";

/// Whether a URL carries a user name or password.
pub fn has_userinfo(u: &url::Url) -> bool {
    !u.username().is_empty() || u.password().is_some()
}

/// Compiles a label matcher's regular expression (anchored at both ends).
pub fn matcher_regex(m: &LabelMatcher) -> Result<Option<regex::Regex>, regex::Error> {
    if !m.regex {
        return Ok(None);
    }
    regex::Regex::new(&format!("^(?:{})$", m.value)).map(Some)
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
    fn never_firing_schedule_is_invalid() {
        let e = validate(&spec(&BASE.replace("0 7 * * *", "0 0 31 2 *")), "ns").unwrap_err();
        assert_eq!(e.reason, "InvalidSchedule");
        assert!(e.message().contains("it never fires"), "{}", e.message());
    }

    #[test]
    fn every_problem_is_named() {
        let s = spec(
            "schedule: '@daily'\ntargets:\n  kubernetes: [{name: a, kubeconfigSecretRef: {name: kc, key: k, namespace: other}, labelSelector: 'app=!=x'}]\n  prometheus:\n  - name: p\n    url: 'http://p:99999'\n    queries: [{name: q, query: up, warning: .nan}]\n    alerts: {exclude: [{label: alertname, value: '(', regex: true}]}\n",
        );
        let e = validate(&s, "ns").unwrap_err();
        assert_eq!(e.reason, "InvalidSpec");
        let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.targets.kubernetes[0].kubeconfigSecretRef.namespace",
                "spec.targets.kubernetes[0].labelSelector",
                "spec.targets.prometheus[0].url",
                "spec.targets.prometheus[0].alerts.exclude[0].value",
                "spec.targets.prometheus[0].queries[0].warning",
            ]
        );
        let msg = e.message();
        assert!(msg.contains("Secret other/kc is in another namespace"), "{msg}");
        assert!(msg.contains("invalid regular expression"), "{msg}");
    }

    #[test]
    fn urls_with_credentials_are_refused() {
        let s = spec(
            "schedule: '@daily'\ntargets:\n  prometheus: [{name: p, url: 'https://user:secret@prom.example'}]\n  aws: [{name: a, regions: [eu-west-1], endpointUrl: 'http://key@moto:5000'}]\n",
        );
        let e = validate(&s, "ns").unwrap_err();
        let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["spec.targets.prometheus[0].url", "spec.targets.aws[0].endpointUrl"]);
        assert!(e.message().contains("auth.basic or auth.bearerTokenSecretRef"), "{}", e.message());
        assert!(!e.message().contains("secret@"), "the refusal never repeats the credentials: {}", e.message());
    }

    #[test]
    fn selectors_are_parsed_as_the_apiserver_does() {
        let with =
            |sel: &str| spec(&BASE.replace("{name: local}", &format!("{{name: local, labelSelector: '{sel}'}}")));
        for ok in
            ["app=web", "app==web,tier!=db", "app in (a, b),!canary", "env notin (dev)", "example.com/app", "a=", "x>3"]
        {
            assert!(validate(&with(ok), "ns").is_ok(), "{ok}: {:?}", validate(&with(ok), "ns").err());
        }
        let long = format!("app={}", "v".repeat(64));
        for bad in [
            "app=!=x",
            "app in (a,b",
            "app in ()",
            "=x",
            "app=a b",
            "-app=x",
            "app=x,",
            long.as_str(),
            "Bad_Prefix/app=x",
        ] {
            let e = validate(&with(bad), "ns").unwrap_err();
            assert!(
                e.message().starts_with("spec.targets.kubernetes[0].labelSelector: invalid label selector"),
                "{bad}: {}",
                e.message()
            );
        }
    }
}
