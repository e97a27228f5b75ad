//! Prometheus-compatible query APIs (Prometheus, Thanos, Mimir, VictoriaMetrics):
//! `GET /api/v1/alerts` and named instant queries on `/api/v1/query`, all concurrently
//! through one HTTP client per target.
//!
//! Connection errors (except TLS failures), 429 and 5xx answers are retried with full
//! jitter inside the run's deadline, honouring Retry-After. A Prometheus error answer
//! (`"status":"error"`, e.g. `bad_data`) is final: it becomes the error of that query
//! alone, with Prometheus' own message. A connect or read timeout is not retried either:
//! the peer already had its full time.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;

use reqwest::{Certificate, Client, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use super::budget::{Budget, Held};
use super::{RunContext, SecretSource, config_error, error, error_chain};
use crate::api::{AlertFilter, Area, ErrorTier, Finding, PromQuery, PrometheusTarget, SecretKeyRef, TargetError};
use crate::evaluate::TargetOutcome;
use crate::evaluate::prometheus::{self as eval, AlertsData, QueryData};
use crate::net::{Attempt, RetryPolicy, remaining, retry};

/// Findings of one target written to the status (counts are always complete).
const MAX_FINDINGS: usize = 50;
/// Queries longer than this are sent as a POST form, not in the URL.
const POST_ABOVE: usize = 2000;
/// Queries in flight at once per target.
const MAX_IN_FLIGHT: usize = 8;
/// Largest answer read; a bigger one is an error rather than a memory spike.
const MAX_BODY: usize = 64 << 20;

/// Checks one endpoint: alerts and every query run concurrently; each part that fails is
/// an error of its own (scope `alerts` or `query <name>`) and the others still count.
pub async fn check(target: &PrometheusTarget, ctx: &RunContext) -> TargetOutcome {
    let mut out = ctx.outcome(&target.name, Area::Prometheus, MAX_FINDINGS);
    out.insecure = target.insecure_skip_tls_verify;
    let prom = match Prom::new(target, ctx).await {
        Ok(p) => p,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    out.scope = Some(prom.endpoint());
    let alerts = async { if target.alerts.enabled { Some(prom.alerts(&target.alerts).await) } else { None } };
    // Collected first: a stream holding the closure trips the compiler's Send inference.
    let pending: Vec<_> = target.queries.iter().map(|q| prom.query(q)).collect();
    let queries = futures::stream::iter(pending).buffered(MAX_IN_FLIGHT).collect();
    let (alerts, queries): (_, Vec<Part>) = tokio::join!(alerts, queries);
    if !target.queries.is_empty() {
        out.facts.insert("queries".into(), target.queries.len() as u64);
        out.facts.insert("querySeries".into(), 0);
    }
    for part in alerts.into_iter().chain(queries) {
        for (fact, n) in part.facts {
            *out.facts.entry(fact.to_string()).or_default() += n;
        }
        out.sink.extend(part.findings);
        out.errors.extend(part.error);
    }
    out
}

/// Findings, facts and the error of the alerts or of one query.
#[derive(Default)]
struct Part {
    findings: Vec<Finding>,
    facts: BTreeMap<&'static str, u64>,
    error: Option<TargetError>,
}

impl Part {
    fn failed(scope: String, mut e: TargetError) -> Self {
        e.scope = Some(scope);
        Self { error: Some(e), ..Self::default() }
    }
}

enum Auth {
    None,
    Bearer(String),
    Basic { username: String, password: String },
}

/// One endpoint: its client, base URL and credentials.
struct Prom {
    client: Client,
    base: Url,
    /// The Alertmanager the alerts are read from, if any.
    alertmanager: Option<(Url, bool)>,
    auth: Auth,
    deadline: Instant,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl Prom {
    async fn new(target: &PrometheusTarget, ctx: &RunContext) -> Result<Self, TargetError> {
        let base = base_url(&target.url).map_err(config_error)?;
        // The policy first: nothing is read or sent for a host the admin does not allow.
        let pinned = super::outbound::check(&ctx.grants, &base, "Prometheus URL").await?;
        let (alertmanager, am_pinned) = match &target.alertmanager {
            Some(am) => {
                let url = base_url(&am.url).map_err(|e| config_error(format!("alertmanager: {e}")))?;
                let pinned = super::outbound::check(&ctx.grants, &url, "Alertmanager URL").await?;
                (Some((url, am.list_muted)), pinned)
            }
            None => (None, None),
        };
        let auth = auth(target, ctx).await?;
        let seconds = |s: i64| Duration::from_secs(s.max(1) as u64);
        let connect_timeout = ctx.connect_timeout.unwrap_or_else(|| seconds(target.connect_timeout_seconds));
        let read_timeout = seconds(target.read_timeout_seconds);
        // A redirect may stay on the endpoint's origin only: it never leads the request,
        // past the policy check, to a host the spec did not name.
        let origins: Vec<_> =
            std::iter::once(&base).chain(alertmanager.as_ref().map(|(u, _)| u)).map(Url::origin).collect();
        let redirects = reqwest::redirect::Policy::custom(move |a| {
            if origins.contains(&a.url().origin()) && a.previous().len() < 5 { a.follow() } else { a.stop() }
        });
        let mut builder = Client::builder()
            .redirect(redirects)
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .user_agent(concat!("morningcheck/", env!("CARGO_PKG_VERSION")));
        if let Some(r) = &target.ca_secret_ref {
            builder = builder.tls_certs_merge(ca_bundle(&ctx.secrets, r).await?);
        }
        if target.insecure_skip_tls_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        for (host, addrs) in pinned.iter().chain(am_pinned.iter()) {
            builder = builder.resolve_to_addrs(host, addrs);
        }
        let client =
            builder.build().map_err(|e| config_error(format!("cannot build the HTTP client: {}", error_chain(&e))))?;
        Ok(Self { client, base, alertmanager, auth, deadline: ctx.deadline, connect_timeout, read_timeout })
    }

    /// The endpoint for the status: scheme, host and path, never credentials or query.
    fn endpoint(&self) -> String {
        format!("{}{}", self.base.origin().ascii_serialization(), self.base.path().trim_end_matches('/'))
    }

    async fn alerts(&self, filter: &AlertFilter) -> Part {
        let scope = || "alerts".to_string();
        let rules = match eval::AlertRules::new(filter) {
            Ok(r) => r,
            Err(m) => return Part::failed(scope(), config_error(m)),
        };
        let Some((am, list_muted)) = &self.alertmanager else {
            let (data, _held): (AlertsData, _) =
                match self.fetch(&self.base, Api::Prometheus, "api/v1/alerts", &[]).await {
                    Ok(d) => d,
                    Err(e) => return Part::failed(scope(), e),
                };
            let s = eval::alert_findings(&data.alerts, &rules, false);
            let facts = BTreeMap::from([
                ("alertsFiring", s.firing),
                ("alertsPending", s.pending),
                ("alertsBelowMinSeverity", s.below_min),
                ("alertsExcluded", s.excluded),
            ]);
            return Part { findings: s.findings, facts, error: None };
        };
        let params = [("active", "true"), ("silenced", "true"), ("inhibited", "true"), ("unprocessed", "true")];
        let (data, _held): (Vec<eval::ManagedAlert>, _) =
            match self.fetch(am, Api::Alertmanager, "api/v2/alerts", &params).await {
                Ok(d) => d,
                Err(e) => return Part::failed("alertmanager".into(), e),
            };
        let alerts: Vec<eval::Alert> = data.into_iter().map(eval::Alert::from).collect();
        let s = eval::alert_findings(&alerts, &rules, *list_muted);
        let facts = BTreeMap::from([
            ("alertsFiring", s.firing),
            ("alertsSilenced", s.silenced),
            ("alertsInhibited", s.inhibited),
            ("alertsBelowMinSeverity", s.below_min),
            ("alertsExcluded", s.excluded),
        ]);
        Part { findings: s.findings, facts, error: None }
    }

    async fn query(&self, q: &PromQuery) -> Part {
        let scope = || format!("query {}", q.name);
        let resolved = match eval::resolve(q) {
            Ok(r) => r,
            Err(m) => return Part::failed(scope(), config_error(m)),
        };
        let timeout = format!("{}s", self.read_timeout.as_secs());
        let params = [("query", resolved.query.as_str()), ("timeout", timeout.as_str())];
        let (data, _held): (QueryData, _) = match self.fetch(&self.base, Api::Prometheus, "api/v1/query", &params).await
        {
            Ok(d) => d,
            Err(e) => return Part::failed(scope(), e),
        };
        match eval::query_findings(&resolved, &data) {
            Ok(o) => Part { findings: o.findings, facts: BTreeMap::from([("querySeries", o.series)]), error: None },
            Err(m) => Part::failed(scope(), error(ErrorTier::BadRequest, m)),
        }
    }

    /// Calls one API path with retries and returns the answer's `data`, with the memory
    /// it holds in the process's [`Budget`] until it is dropped.
    async fn fetch<T: DeserializeOwned>(
        &self,
        base: &Url,
        api: Api,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<(T, Held), TargetError> {
        let url = base.join(path).map_err(|e| config_error(format!("{path}: {e}")))?;
        let post = params.iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>() > POST_ABOVE;
        retry(RetryPolicy::default(), self.deadline, |_| self.attempt(&url, api, params, post)).await
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        url: &Url,
        api: Api,
        params: &[(&str, &str)],
        post: bool,
    ) -> Attempt<(T, Held), TargetError> {
        let req =
            if post { self.client.post(url.clone()).form(params) } else { self.client.get(url.clone()).query(params) };
        let resp = match self.authorize(req).timeout(remaining(self.deadline)).send().await {
            Ok(r) => r,
            Err(e) => {
                let again = transient(&e);
                let err = self.transport_error(e);
                return if again { Attempt::Retry(err, None) } else { Attempt::Fail(err) };
            }
        };
        let status = resp.status();
        let wait = crate::net::retry_after(resp.headers());
        let mut held = Budget::process().hold();
        match read_body(resp, &mut held).await {
            Ok(body) => match answer(api, status, wait, &body) {
                Attempt::Done(data) => Attempt::Done((data, held)),
                Attempt::Retry(e, wait) => Attempt::Retry(e, wait),
                Attempt::Fail(e) => Attempt::Fail(e),
            },
            Err(BodyError::Transport(e)) => Attempt::Fail(self.transport_error(e)),
            Err(BodyError::TooLarge(why)) => Attempt::Fail(error(ErrorTier::Api, why)),
        }
    }

    fn authorize(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Basic { username, password } => req.basic_auth(username, Some(password)),
        }
    }

    /// A failure to connect or to read, worded by what timed out.
    fn transport_error(&self, e: reqwest::Error) -> TargetError {
        let host = self.base.origin().ascii_serialization();
        let message = if Instant::now() >= self.deadline {
            format!("{host}: the run's deadline passed before it answered")
        } else if e.is_timeout() && e.is_connect() {
            format!("{host}: no connection within the connect timeout of {}s", self.connect_timeout.as_secs())
        } else if e.is_timeout() {
            format!("{host}: no answer within the read timeout of {}s", self.read_timeout.as_secs())
        } else {
            // The URL is left out: the host is named, and the path is not the problem.
            format!("{host}: {}", error_chain(&e.without_url()))
        };
        error(ErrorTier::Unreachable, message)
    }
}

/// Credentials of a target, read from its Secrets (validation allows one kind only).
async fn auth(target: &PrometheusTarget, ctx: &RunContext) -> Result<Auth, TargetError> {
    let Some(a) = &target.auth else { return Ok(Auth::None) };
    if let Some(b) = &a.basic {
        let password = ctx.secrets.get_string(&b.password_secret_ref).await?;
        crate::redact::remember_basic(&b.username, &password);
        return Ok(Auth::Basic { username: b.username.clone(), password });
    }
    match &a.bearer_token_secret_ref {
        Some(r) => Ok(Auth::Bearer(ctx.secrets.get_string(r).await?)),
        None => Ok(Auth::None),
    }
}

/// The PEM certificates of a CA bundle Secret, trusted on top of the system's.
async fn ca_bundle(secrets: &SecretSource, r: &SecretKeyRef) -> Result<Vec<Certificate>, TargetError> {
    let what = format!("CA bundle in Secret {} key {:?}", r.name, r.key);
    let pem = secrets.get(r).await?;
    let certs = Certificate::from_pem_bundle(&pem).map_err(|e| config_error(format!("{what}: {}", error_chain(&e))))?;
    if certs.is_empty() {
        return Err(config_error(format!("{what} holds no PEM certificate")));
    }
    Ok(certs)
}

/// Base URL with a trailing slash, so `api/v1/...` joins under its path prefix.
fn base_url(raw: &str) -> Result<Url, String> {
    let mut u = Url::parse(raw).map_err(|e| format!("url {:?}: {e}", crate::redact::urls(raw)))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(format!("url {:?} is not an http(s) URL", crate::redact::urls(raw)));
    }
    u.set_query(None);
    u.set_fragment(None);
    if !u.path().ends_with('/') {
        let path = format!("{}/", u.path());
        u.set_path(&path);
    }
    Ok(u)
}

/// Connection errors are worth another try, except timeouts (the peer had its time)
/// and TLS failures (a certificate does not fix itself).
fn transient(e: &reqwest::Error) -> bool {
    !e.is_timeout() && (e.is_connect() || e.is_request()) && !is_tls(e)
}

fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.is::<rustls::Error>() {
            return true;
        }
        // An io::Error hides what it wraps from source() (and may wrap another io::Error).
        cur = match c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
    }
    false
}

enum BodyError {
    Transport(reqwest::Error),
    TooLarge(String),
}

/// Reads an answer, chunk by chunk into `held`: it stops at the first chunk past the
/// answer bound or the memory budget, never buffering the rest.
async fn read_body(mut resp: Response, held: &mut Held) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge(format!("answer larger than {} MiB", MAX_BODY >> 20)));
        }
        Budget::process().grow(held, chunk.len()).map_err(BodyError::TooLarge)?;
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Every answer of the Prometheus HTTP API: `data` on success, `errorType` and `error`
/// otherwise.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    error_type: Option<String>,
    error: Option<String>,
}

/// Turns one HTTP answer into what the retry loop should do with it.
/// Whose API answers: Prometheus wraps its data in an envelope, Alertmanager does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    Prometheus,
    Alertmanager,
}

fn answer<T: DeserializeOwned>(
    api: Api,
    status: StatusCode,
    wait: Option<Duration>,
    body: &[u8],
) -> Attempt<T, TargetError> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Attempt::Retry(error(ErrorTier::Throttled, status_message(status)), wait);
    }
    if status.is_success() && api == Api::Alertmanager {
        return match serde_json::from_slice::<T>(body) {
            Ok(d) => Attempt::Done(d),
            Err(e) => Attempt::Fail(error(ErrorTier::Api, format!("not an Alertmanager API v2 answer: {e}"))),
        };
    }
    if status.is_success() {
        return match serde_json::from_slice::<Envelope<T>>(body) {
            Ok(Envelope { status: s, data: Some(d), .. }) if s == "success" => Attempt::Done(d),
            Ok(env) if env.status == "error" => Attempt::Fail(prometheus_error(status, &env)),
            Ok(_) => Attempt::Fail(error(ErrorTier::Api, "not a Prometheus API answer: no data")),
            Err(e) => Attempt::Fail(error(ErrorTier::Api, format!("not a Prometheus API answer: {e}"))),
        };
    }
    if let Ok(env) = serde_json::from_slice::<Envelope<serde::de::IgnoredAny>>(body)
        && env.status == "error"
    {
        return Attempt::Fail(prometheus_error(status, &env));
    }
    let e = error(crate::errors::http_tier(status.as_u16()), status_message(status));
    if status.is_server_error() { Attempt::Retry(e, wait) } else { Attempt::Fail(e) }
}

/// Prometheus' own error, e.g. `bad_data: invalid parameter "query": 1:5: parse error: ...`.
fn prometheus_error<T>(status: StatusCode, env: &Envelope<T>) -> TargetError {
    let kind = env.error_type.as_deref().unwrap_or("error");
    let tier = crate::errors::prometheus_tier(kind, status.as_u16());
    error(tier, format!("{kind}: {}", env.error.as_deref().unwrap_or("no message")))
}

/// `502 Bad Gateway` and what it means, never the body: a peer that does not answer with
/// Prometheus' error envelope may be any service a URL points at, and its page stays out
/// of the status.
fn status_message(status: StatusCode) -> String {
    let hint = match status.as_u16() {
        401 => "credentials missing or rejected",
        403 => "the credentials may not read this API",
        404 => "is the URL, with its path prefix, that of a Prometheus-compatible API?",
        429 => "rate limited",
        _ => "from a peer that does not answer like a Prometheus API; its body is not shown",
    };
    format!("{status} ({hint})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(
        a: Attempt<serde_json::Value, TargetError>,
    ) -> (&'static str, Option<ErrorTier>, String, Option<Duration>) {
        match a {
            Attempt::Done(v) => ("done", None, v.to_string(), None),
            Attempt::Fail(e) => ("fail", Some(e.tier), e.message, None),
            Attempt::Retry(e, w) => ("retry", Some(e.tier), e.message, w),
        }
    }

    fn run(status: u16, body: &str) -> (&'static str, Option<ErrorTier>, String, Option<Duration>) {
        outcome(answer(
            Api::Prometheus,
            StatusCode::from_u16(status).unwrap(),
            Some(Duration::from_secs(2)),
            body.as_bytes(),
        ))
    }

    #[test]
    fn path_prefixes_are_kept() {
        for raw in ["http://p:9090/prom", "http://p:9090/prom/", "http://p:9090/prom?x=1#f"] {
            assert_eq!(
                base_url(raw).unwrap().join("api/v1/alerts").unwrap().as_str(),
                "http://p:9090/prom/api/v1/alerts"
            );
        }
        assert_eq!(base_url("https://p").unwrap().join("api/v1/query").unwrap().as_str(), "https://p/api/v1/query");
        assert_eq!(base_url("ftp://p").unwrap_err(), "url \"ftp://p\" is not an http(s) URL");
        assert!(base_url("not a url").is_err());
    }

    fn ctx(connect_timeout: Option<Duration>) -> RunContext {
        let values = [(("pw".to_string(), "k".to_string()), b"secret\n".to_vec())].into_iter().collect();
        RunContext {
            now: jiff::Timestamp::now(),
            deadline: Instant::now() + Duration::from_secs(30),
            secrets: SecretSource::Static { namespace: "mc".into(), values: std::sync::Arc::new(values) },
            local: super::super::LocalCluster::kubeconfig(None),
            connect_timeout,
            aws_env: crate::collect::AwsEnv::process(),
            grants: crate::tenancy::Grants::unrestricted(),
            in_flight: crate::collect::in_flight(crate::collect::TARGETS_IN_FLIGHT),
            previous: Default::default(),
            snoozes: Default::default(),
        }
    }

    #[tokio::test]
    async fn timeouts_auth_and_endpoint_come_from_the_target_and_the_run() {
        let t: PrometheusTarget = serde_json::from_value(serde_json::json!({
            "name": "p", "url": "https://user:pass@prom.example:9443/prom/?tenant=x", "readTimeoutSeconds": 7,
            "auth": {"basic": {"username": "u", "passwordSecretRef": {"name": "pw", "key": "k"}}},
        }))
        .unwrap();
        let p = Prom::new(&t, &ctx(None)).await.unwrap();
        assert_eq!((p.connect_timeout, p.read_timeout), (Duration::from_secs(5), Duration::from_secs(7)));
        assert!(matches!(&p.auth, Auth::Basic { username, password } if username == "u" && password == "secret"));
        assert_eq!(p.endpoint(), "https://prom.example:9443/prom");
        let p = Prom::new(&t, &ctx(Some(Duration::from_secs(2)))).await.unwrap();
        assert_eq!(p.connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn success_and_prometheus_errors() {
        assert_eq!(run(200, r#"{"status":"success","data":{"a":1}}"#), ("done", None, r#"{"a":1}"#.into(), None));
        let bad = r#"{"status":"error","errorType":"bad_data","error":"parse error: unclosed left parenthesis"}"#;
        assert_eq!(
            run(400, bad),
            ("fail", Some(ErrorTier::BadRequest), "bad_data: parse error: unclosed left parenthesis".into(), None)
        );
        // A Prometheus error answer is final, even on a 5xx.
        let timeout = r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#;
        assert_eq!(run(503, timeout).0, "fail");
        assert_eq!(run(503, timeout).2, "timeout: query timed out in expression evaluation");
        assert_eq!(run(200, "<html>").1, Some(ErrorTier::Api));
    }

    #[test]
    fn statuses_are_told_apart_and_foreign_bodies_never_quoted() {
        let (kind, tier, msg, _) = run(401, "Unauthorized: Bearer secret-token-echoed\n");
        assert_eq!((kind, tier), ("fail", Some(ErrorTier::Unauthorized)));
        assert_eq!(msg, "401 Unauthorized (credentials missing or rejected)");
        let (_, tier, msg, _) = run(403, r#"{"kind":"Status","message":"alerts is forbidden"}"#);
        assert_eq!(
            (tier, msg.as_str()),
            (Some(ErrorTier::Forbidden), "403 Forbidden (the credentials may not read this API)")
        );
        assert_eq!(
            run(429, "slow down"),
            (
                "retry",
                Some(ErrorTier::Throttled),
                "429 Too Many Requests (rate limited)".into(),
                Some(Duration::from_secs(2))
            )
        );
        let (kind, tier, msg, wait) = run(502, "<html>internal admin console</html>");
        assert_eq!((kind, tier, wait), ("retry", Some(ErrorTier::Api), Some(Duration::from_secs(2))));
        assert_eq!(
            msg,
            "502 Bad Gateway (from a peer that does not answer like a Prometheus API; its body is not shown)"
        );
        let (kind, tier, msg, _) = run(404, "404 page not found");
        assert_eq!((kind, tier), ("fail", Some(ErrorTier::Api)));
        assert_eq!(msg, "404 Not Found (is the URL, with its path prefix, that of a Prometheus-compatible API?)");
    }
}
