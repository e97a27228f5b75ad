//! Prometheus checks against the real Prometheus of the test environment, whose rules
//! (tests/env/prometheus/rules.yml) fire constant alerts and record constant series, and
//! against small local servers for what a healthy Prometheus never does: strip a path
//! prefix, answer 503 or 429, or never answer at all.

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use common::{eventually, var};
use jiff::Timestamp;
use morningcheck::api::{ErrorTier, PrometheusTarget, Severity, TargetError};
use morningcheck::collect::{LocalCluster, RunContext, SecretSource, prometheus};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// A finding as asserted: severity, check, object, message.
type Seen = (Severity, String, String, String);

/// What a check produced, in a form to compare exactly.
#[derive(Debug)]
struct Outcome {
    errors: Vec<TargetError>,
    facts: BTreeMap<String, u64>,
    findings: Vec<Seen>,
    since: HashMap<String, Timestamp>,
    scope: Option<String>,
    insecure: bool,
}

fn ctx(secrets: &[(&str, &str, &str)]) -> RunContext {
    morningcheck::install_crypto_provider();
    let values = secrets.iter().map(|(n, k, v)| ((n.to_string(), k.to_string()), v.as_bytes().to_vec())).collect();
    RunContext {
        now: Timestamp::now(),
        deadline: Instant::now() + Duration::from_secs(60),
        secrets: SecretSource::Static { namespace: "mc".into(), values: Arc::new(values) },
        local: LocalCluster::kubeconfig(None),
        connect_timeout: None,
        aws_env: Default::default(),
        grants: morningcheck::tenancy::Grants::unrestricted(),
        in_flight: morningcheck::collect::in_flight(morningcheck::collect::TARGETS_IN_FLIGHT),
        previous: Default::default(),
        snoozes: Default::default(),
    }
}

fn target(v: Value) -> PrometheusTarget {
    let mut v = v;
    v["name"] = json!("prom");
    serde_json::from_value(v).unwrap()
}

async fn check_with(t: &PrometheusTarget, ctx: &RunContext) -> Outcome {
    let o = prometheus::check(t, ctx).await;
    let (errors, facts, scope, insecure) = (o.errors, o.facts, o.scope, o.insecure);
    let (kept, _, _) = o.sink.into_parts();
    let since = kept.iter().filter_map(|f| Some((f.object.clone(), f.since.as_ref()?.0))).collect();
    let findings = kept.into_iter().map(|f| (f.severity, f.check, f.object, f.message)).collect();
    Outcome { errors, facts, findings, since, scope, insecure }
}

async fn check(v: Value) -> Outcome {
    check_with(&target(v), &ctx(&[])).await
}

fn seen(severity: Severity, check: &str, object: &str, message: &str) -> Seen {
    (severity, check.to_string(), object.to_string(), message.to_string())
}

fn facts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn err(tier: ErrorTier, scope: &str, message: &str) -> TargetError {
    TargetError { tier, scope: Some(scope.to_string()), message: message.to_string() }
}

fn disk() -> Seen {
    seen(
        Severity::Critical,
        "AlertFiring",
        "DiskAlmostFull{instance=\"db-1:9100\", namespace=\"prod\"}",
        "Disk on db-1 is 97% full",
    )
}

fn latency() -> Seen {
    seen(
        Severity::Warning,
        "AlertFiring",
        "HighLatency{job=\"api\", service=\"checkout\"}",
        "p99 latency of checkout above 2s",
    )
}

fn no_severity(treated_as: &str) -> Seen {
    let message = format!("An alert that carries no severity label (no severity label, treated as {treated_as})");
    seen(Severity::Warning, "AlertFiring", "NoSeverityLabel", &message)
}

/// The alerts with the default filter, when SlowToFire is still pending.
fn default_findings() -> Vec<Seen> {
    vec![disk(), latency(), no_severity("warning")]
}

/// The raw answer of the test Prometheus, to compare with.
async fn raw(url: &str, path: &str) -> Value {
    reqwest::get(format!("{url}{path}")).await.unwrap().json().await.unwrap()
}

/// State of an alert as Prometheus reports it.
async fn alert_state(name: &str) -> Option<String> {
    let v = raw(&var("MC_PROMETHEUS_URL"), "/api/v1/alerts").await;
    let alerts = v["data"]["alerts"].as_array()?.clone();
    let a = alerts.into_iter().find(|a| a["labels"]["alertname"] == name)?;
    a["state"].as_str().map(str::to_string)
}

/// Waits until the rules of the test Prometheus at `url` have been evaluated: five alerts
/// firing and the recording rule's two series.
async fn settled(url: &str, auth: Option<(&str, &str)>) {
    let mut t = target(json!({"url": url, "alerts": {"exclude": [{"label": "alertname", "value": "SlowToFire"}]},
                              "queries": [{"name": "n", "query": "morningcheck:test_value", "warning": 1e9}]}));
    let mut secrets = vec![];
    if let Some((user, password)) = auth {
        t.auth = serde_json::from_value(
            json!({"basic": {"username": user, "passwordSecretRef": {"name": "p", "key": "k"}}}),
        )
        .unwrap();
        secrets.push(("p", "k", password));
    }
    let ctx = ctx(&secrets);
    eventually(60, "the test Prometheus' rules to be evaluated", || async {
        let o = check_with(&t, &ctx).await;
        let firing = o.facts.get("alertsFiring") == Some(&5);
        (o.errors.is_empty() && firing && o.facts.get("querySeries") == Some(&2)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn firing_alerts_are_findings_and_pending_ones_are_counted() {
    let url = var("MC_PROMETHEUS_URL");
    settled(&url, None).await;
    // SlowToFire waits an hour before it fires: an environment up that long sees it fire.
    let (state, o) = eventually(30, "SlowToFire to keep its state during a check", || async {
        let before = alert_state("SlowToFire").await?;
        let o = check(json!({"url": url})).await;
        (alert_state("SlowToFire").await? == before).then_some((before, o))
    })
    .await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(o.scope.as_deref(), Some(url.as_str()));
    assert!(!o.insecure);
    let mut expected = default_findings();
    if state == "firing" {
        expected
            .insert(1, seen(Severity::Critical, "AlertFiring", "SlowToFire", "Pending for an hour before it fires"));
        assert_eq!(
            o.facts,
            facts(&[("alertsBelowMinSeverity", 2), ("alertsExcluded", 0), ("alertsFiring", 6), ("alertsPending", 0)])
        );
    } else {
        assert_eq!(state, "pending");
        assert_eq!(
            o.facts,
            facts(&[("alertsBelowMinSeverity", 2), ("alertsExcluded", 0), ("alertsFiring", 5), ("alertsPending", 1)])
        );
    }
    assert_eq!(o.findings, expected);
    let alerts = raw(&url, "/api/v1/alerts").await;
    let active_at = alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "DiskAlmostFull")
        .unwrap()["activeAt"]
        .as_str()
        .unwrap()
        .parse::<Timestamp>()
        .unwrap();
    assert_eq!(o.since[&disk().2], active_at);
}

#[tokio::test]
async fn min_severity_info_reports_info_alerts_and_watchdog_is_excluded() {
    let url = var("MC_PROMETHEUS_URL");
    settled(&url, None).await;
    let o = check(json!({"url": url, "alerts": {
        "minSeverity": "Info",
        "unlabeledSeverity": "Info",
        "exclude": [{"label": "alertname", "value": "Watchdog"}, {"label": "alertname", "value": "SlowTo.*", "regex": true}],
    }}))
    .await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let mut no_sev = no_severity("info");
    no_sev.0 = Severity::Info;
    assert_eq!(
        o.findings,
        [disk(), latency(), seen(Severity::Info, "AlertFiring", "InfoOnly", "Informational alert"), no_sev]
    );
    assert_eq!(
        o.facts,
        facts(&[("alertsBelowMinSeverity", 0), ("alertsExcluded", 2), ("alertsFiring", 4), ("alertsPending", 0)])
    );
}

#[tokio::test]
async fn severity_labels_override_the_table_and_include_narrows() {
    let url = var("MC_PROMETHEUS_URL");
    settled(&url, None).await;
    let o = check(json!({"url": url, "alerts": {
        "minSeverity": "Critical",
        "severityLabels": {"NONE": "Critical"},
        "include": [{"label": "alertname", "value": "Watchdog|High.*", "regex": true}],
    }}))
    .await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(
        o.findings,
        [seen(Severity::Critical, "AlertFiring", "Watchdog", "Always firing, proves the alerting pipeline works")]
    );
    assert_eq!(
        o.facts,
        facts(&[("alertsBelowMinSeverity", 1), ("alertsExcluded", 4), ("alertsFiring", 2), ("alertsPending", 0)])
    );
}

#[tokio::test]
async fn query_thresholds_are_evaluated_per_series() {
    let url = var("MC_PROMETHEUS_URL");
    settled(&url, None).await;
    let o = check(json!({"url": url, "alerts": {"enabled": false}, "queries": [
        {"name": "values", "query": "morningcheck:test_value", "warning": 10, "critical": 40, "legend": "{{instance}}"},
        {"name": "quiet", "query": "morningcheck:test_value", "warning": 100},
        {"name": "low", "query": "morningcheck:test_value", "warning": 10, "direction": "Below", "unit": "percent"},
        {"name": "total", "query": "scalar(sum(morningcheck:test_value))", "warning": 45, "unit": "seconds"},
        {"name": "empty", "query": "morningcheck:test_value{instance=\"nowhere\"}", "warning": 0},
        {"name": "nan", "query": "vector(0) / 0", "warning": 0},
        {"name": "inf", "query": "vector(1) / 0", "critical": 1e9},
    ]}))
    .await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(
        o.findings,
        [
            seen(
                Severity::Critical,
                "QueryThreshold",
                "inf",
                "value +Inf is above the critical threshold of 1e9 (an infinite value: a division by zero in the query?)"
            ),
            seen(
                Severity::Critical,
                "QueryThreshold",
                "values: fixed-a",
                "value 42 is above the critical threshold of 40"
            ),
            seen(
                Severity::Warning,
                "QueryThreshold",
                "low: morningcheck:test_value{instance=\"fixed-b\"}",
                "value 7% is below the warning threshold of 10%"
            ),
            seen(Severity::Warning, "QueryThreshold", "total", "value 49s is above the warning threshold of 45s"),
            // NaN is explained, not dropped; the empty answer of a custom query is healthy.
            seen(
                Severity::Info,
                "QueryNoData",
                "nan",
                "value NaN: no data to compare with the thresholds (0/0, e.g. a ratio over no samples)"
            ),
        ]
    );
    assert_eq!(o.facts, facts(&[("queries", 7), ("querySeries", 9)]));
}

/// How many series Prometheus answers to `query` right now.
async fn series_count(url: &str, query: &str) -> u64 {
    let v: Value = reqwest::Client::new()
        .get(format!("{url}/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"]["result"].as_array().unwrap().len() as u64
}

#[tokio::test]
async fn presets_are_valid_promql_on_a_real_prometheus() {
    let url = var("MC_PROMETHEUS_URL");
    let presets = [
        r#"100 - (avg by(instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100)"#,
        r#"predict_linear(node_filesystem_free_bytes{fstype!~"tmpfs|overlay"}[6h], 24*3600)"#,
        r#"sum by(service) (rate(http_requests_total{status=~"5.."}[5m]))"#,
    ];
    // Thresholds no value reaches: the point is that each preset's PromQL runs. A fresh
    // Prometheus needs two scrapes of node-exporter before `rate` has a value.
    let (o, series) = eventually(60, "node-exporter's CPU rate and a stable series count", || async {
        let o = check(json!({"url": url, "alerts": {"enabled": false}, "queries": [
            {"name": "hot", "preset": "hot-nodes", "warning": 1000},
            {"name": "disks", "preset": "disks-filling", "critical": -1e30},
            {"name": "errors", "preset": "http-5xx", "warning": 1e30},
        ]}))
        .await;
        let mut series = 0;
        for q in presets {
            series += series_count(&url, q).await;
        }
        let cpu = series_count(&url, presets[0]).await;
        (cpu == 1 && o.facts.get("querySeries") == Some(&series)).then_some((o, series))
    })
    .await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    // Nothing here serves http_requests_total: the preset says so rather than passing.
    assert_eq!(
        o.findings,
        [seen(
            Severity::Warning,
            "QueryNoData",
            "errors",
            "the query returned no series: are the series of http_requests_total scraped?"
        )]
    );
    assert_eq!(o.facts, facts(&[("queries", 3), ("querySeries", series)]));
}

/// A real Prometheus of its own that scrapes nothing but itself, killed on drop.
struct BarePrometheus {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    url: String,
}

impl BarePrometheus {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = closed_port().await;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global: {{scrape_interval: 2s}}\nscrape_configs:\n- job_name: self\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"),
        )
        .unwrap();
        let child = std::process::Command::new(var("MC_PROMETHEUS_BIN"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus");
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        eventually(60, "a bare Prometheus ready", || async {
            reqwest::get(&ready).await.ok()?.status().is_success().then_some(())
        })
        .await;
        Self { child, _dir: dir, url }
    }
}

impl Drop for BarePrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// No node-exporter scraped: the presets that read it are warnings that say so, never a
/// silent pass; a custom query without data stays healthy unless it says otherwise.
#[tokio::test]
async fn presets_without_their_series_are_warnings_not_a_pass() {
    let bare = BarePrometheus::start().await;
    let o = check(json!({"url": bare.url, "alerts": {"enabled": false}, "queries": [
        {"name": "hot", "preset": "hot-nodes"},
        {"name": "disks", "preset": "disks-filling"},
        {"name": "custom", "query": "absent_metric_of_the_test", "warning": 1},
        {"name": "strict", "query": "absent_metric_of_the_test", "warning": 1, "onEmpty": "Critical"},
    ]}))
    .await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let why = |series: &str| format!("the query returned no series: are the series of {series} scraped?");
    let mut findings = o.findings.clone();
    findings.sort();
    let mut want = vec![
        seen(Severity::Warning, "QueryNoData", "disks", &why("node_filesystem_free_bytes (node-exporter)")),
        seen(Severity::Warning, "QueryNoData", "hot", &why("node_cpu_seconds_total (node-exporter)")),
        seen(Severity::Critical, "QueryNoData", "strict", "the query returned no series"),
    ];
    want.sort();
    assert_eq!(findings, want);
}

#[tokio::test]
async fn invalid_promql_is_that_querys_error_and_the_rest_still_runs() {
    let url = var("MC_PROMETHEUS_URL");
    settled(&url, None).await;
    let o =
        check(json!({"url": url, "alerts": {"exclude": [{"label": "alertname", "value": "SlowToFire"}]}, "queries": [
            {"name": "broken", "query": "sum(", "warning": 1},
            {"name": "range", "query": "morningcheck:test_value[1m]", "warning": 1},
            {"name": "values", "query": "morningcheck:test_value", "critical": 40, "legend": "{{instance}}"},
        ]}))
        .await;
    assert_eq!(
        o.errors,
        [
            err(
                ErrorTier::BadRequest,
                "query broken",
                "bad_data: invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"
            ),
            err(
                ErrorTier::BadRequest,
                "query range",
                "the query returns a matrix; thresholds need an instant vector or a scalar"
            ),
        ]
    );
    let mut expected = vec![
        disk(),
        seen(Severity::Critical, "QueryThreshold", "values: fixed-a", "value 42 is above the critical threshold of 40"),
    ];
    expected.extend(default_findings().into_iter().skip(1));
    assert_eq!(o.findings, expected);
    assert_eq!(
        o.facts,
        facts(&[
            ("alertsBelowMinSeverity", 2),
            ("alertsExcluded", 1),
            ("alertsFiring", 5),
            ("alertsPending", 0),
            ("queries", 3),
            ("querySeries", 2),
        ])
    );
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn stopped_prometheus_is_unreachable() {
    let base = format!("http://127.0.0.1:{}", closed_port().await);
    let o = check(json!({"url": base, "queries": [{"name": "q", "query": "up", "warning": 1}]})).await;
    let refused = format!(
        "{base}: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)"
    );
    assert_eq!(
        o.errors,
        [err(ErrorTier::Unreachable, "alerts", &refused), err(ErrorTier::Unreachable, "query q", &refused)]
    );
    assert_eq!(o.findings, []);
    assert_eq!(o.facts, facts(&[("queries", 1), ("querySeries", 0)]));
}

fn basic_auth(url: &str) -> PrometheusTarget {
    let mut t = target(json!({"url": url, "alerts": {"exclude": [{"label": "alertname", "value": "SlowToFire"}]}}));
    t.auth = serde_json::from_value(json!({"basic": {
        "username": var("MC_PROMETHEUS_AUTH_USER"),
        "passwordSecretRef": {"name": "prom-auth", "key": "password"},
    }}))
    .unwrap();
    t
}

#[tokio::test]
async fn basic_auth_with_a_wrong_password_is_unauthorized() {
    let t = basic_auth(&var("MC_PROMETHEUS_AUTH_URL"));
    let o = check_with(&t, &ctx(&[("prom-auth", "password", "not-the-password")])).await;
    assert_eq!(
        o.errors,
        [err(ErrorTier::Unauthorized, "alerts", "401 Unauthorized (credentials missing or rejected)")]
    );
    assert_eq!(o.findings, []);
    assert!(!o.errors[0].message.contains("not-the-password"));
}

#[tokio::test]
async fn basic_auth_with_the_right_password_returns_the_alerts() {
    let url = var("MC_PROMETHEUS_AUTH_URL");
    let password = var("MC_PROMETHEUS_AUTH_PASSWORD");
    settled(&url, Some((&var("MC_PROMETHEUS_AUTH_USER"), &password))).await;
    let o = check_with(&basic_auth(&url), &ctx(&[("prom-auth", "password", &password)])).await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(o.findings, default_findings());
    assert_eq!(o.facts["alertsFiring"], 5);
}

#[tokio::test]
async fn a_missing_secret_is_a_config_error_of_the_target() {
    let o = check_with(&basic_auth(&var("MC_PROMETHEUS_AUTH_URL")), &ctx(&[])).await;
    assert_eq!(
        o.errors,
        [TargetError {
            tier: ErrorTier::Config,
            scope: None,
            message: "Secret mc/prom-auth key \"password\" was not given".into()
        }]
    );
    assert_eq!((o.findings.len(), o.facts.len(), o.scope), (0, 0, None));
}

// ---------------------------------------------------------------------------------------
// Local servers

/// A canned answer a proxy gives instead of forwarding.
#[derive(Clone)]
struct Canned {
    status: u16,
    retry_after: Option<&'static str>,
    body: &'static str,
}

/// A request as a proxy received it.
#[derive(Debug, Clone, PartialEq)]
struct Received {
    method: String,
    path: String,
    authorization: Option<String>,
}

struct ProxyState {
    upstream: String,
    strip: &'static str,
    canned: Mutex<VecDeque<Canned>>,
    seen: Mutex<Vec<Received>>,
    client: reqwest::Client,
}

/// A reverse proxy to the test Prometheus that strips `strip` from the path and first
/// gives the `canned` answers, one per request.
struct Proxy {
    url: String,
    state: Arc<ProxyState>,
}

impl Proxy {
    async fn start(strip: &'static str, canned: Vec<Canned>) -> Self {
        let state = Arc::new(ProxyState {
            upstream: var("MC_PROMETHEUS_URL"),
            strip,
            canned: Mutex::new(canned.into()),
            seen: Mutex::new(Vec::new()),
            client: reqwest::Client::new(),
        });
        let app = axum::Router::new().fallback(forward).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    fn seen(&self) -> Vec<Received> {
        self.state.seen.lock().unwrap().clone()
    }
}

async fn forward(State(s): State<Arc<ProxyState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let auth = parts.headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_string());
    let path = parts.uri.path().to_string();
    s.seen.lock().unwrap().push(Received { method: parts.method.to_string(), path: path.clone(), authorization: auth });
    let canned = s.canned.lock().unwrap().pop_front();
    if let Some(c) = canned {
        let mut r = Response::builder().status(c.status);
        if let Some(wait) = c.retry_after {
            r = r.header(header::RETRY_AFTER, wait);
        }
        return r.body(Body::from(c.body)).unwrap();
    }
    let Some(rest) = path.strip_prefix(s.strip) else {
        return Response::builder().status(StatusCode::NOT_FOUND).body(Body::from("no such prefix")).unwrap();
    };
    let query = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut up = s.client.request(parts.method, format!("{}{rest}{query}", s.upstream)).body(body);
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        up = up.header(header::CONTENT_TYPE, ct);
    }
    let answer = up.send().await.unwrap();
    let status = answer.status();
    let ct = answer.headers().get(header::CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static("text/plain"));
    let bytes = answer.bytes().await.unwrap();
    Response::builder().status(status).header(header::CONTENT_TYPE, ct).body(Body::from(bytes)).unwrap()
}

fn busy(status: u16, n: usize, retry_after: Option<&'static str>) -> Vec<Canned> {
    vec![Canned { status, retry_after, body: "upstream busy" }; n]
}

fn alerts_only(url: &str) -> Value {
    json!({"url": url, "alerts": {"exclude": [{"label": "alertname", "value": "SlowToFire"}]}})
}

#[tokio::test]
async fn a_path_prefix_behind_a_proxy_works() {
    settled(&var("MC_PROMETHEUS_URL"), None).await;
    let proxy = Proxy::start("/prom", vec![]).await;
    let mut t = alerts_only(&format!("{}/prom", proxy.url));
    t["queries"] =
        json!([{"name": "values", "query": "morningcheck:test_value", "critical": 40, "legend": "{{instance}}"}]);
    let o = check(t).await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(o.scope, Some(format!("{}/prom", proxy.url)));
    assert_eq!(o.findings.len(), 4);
    assert!(o.findings.contains(&seen(
        Severity::Critical,
        "QueryThreshold",
        "values: fixed-a",
        "value 42 is above the critical threshold of 40"
    )));
    let mut paths: Vec<String> = proxy.seen().into_iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    paths.sort();
    assert_eq!(paths, ["GET /prom/api/v1/alerts", "GET /prom/api/v1/query"]);
}

#[tokio::test]
async fn a_long_query_is_posted_as_a_form() {
    settled(&var("MC_PROMETHEUS_URL"), None).await;
    let proxy = Proxy::start("", vec![]).await;
    let long = format!("morningcheck:test_value{}", " + 0".repeat(600));
    let o = check(json!({"url": proxy.url, "alerts": {"enabled": false}, "queries": [
        {"name": "long", "query": long, "critical": 40, "legend": "{{instance}}"},
        {"name": "short", "query": "morningcheck:test_value", "critical": 40, "legend": "{{instance}}"},
    ]}))
    .await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(
        o.findings,
        [
            seen(
                Severity::Critical,
                "QueryThreshold",
                "long: fixed-a",
                "value 42 is above the critical threshold of 40"
            ),
            seen(
                Severity::Critical,
                "QueryThreshold",
                "short: fixed-a",
                "value 42 is above the critical threshold of 40"
            ),
        ]
    );
    let mut methods: Vec<String> = proxy.seen().into_iter().map(|r| r.method).collect();
    methods.sort();
    assert_eq!(methods, ["GET", "POST"]);
}

#[tokio::test]
async fn a_bearer_token_from_a_secret_is_sent() {
    let proxy = Proxy::start("", vec![]).await;
    let mut t = target(alerts_only(&proxy.url));
    t.auth = serde_json::from_value(json!({"bearerTokenSecretRef": {"name": "tok", "key": "token"}})).unwrap();
    let o = check_with(&t, &ctx(&[("tok", "token", " s3cret-token\n")])).await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let auth: Vec<Option<String>> = proxy.seen().into_iter().map(|r| r.authorization).collect();
    assert_eq!(auth, [Some("Bearer s3cret-token".to_string())]);
}

#[tokio::test]
async fn a_burst_of_503_is_retried_and_succeeds() {
    settled(&var("MC_PROMETHEUS_URL"), None).await;
    let proxy = Proxy::start("", busy(503, 2, None)).await;
    let o = check(alerts_only(&proxy.url)).await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(o.findings, default_findings());
    assert_eq!(proxy.seen().len(), 3);
}

#[tokio::test]
async fn throttling_waits_as_long_as_retry_after_says() {
    settled(&var("MC_PROMETHEUS_URL"), None).await;
    let proxy = Proxy::start("", busy(429, 1, Some("1"))).await;
    let started = Instant::now();
    let o = check(alerts_only(&proxy.url)).await;
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(o.findings, default_findings());
    assert_eq!(proxy.seen().len(), 2);
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test]
async fn persistent_503_fails_after_the_retries() {
    let proxy = Proxy::start("", busy(503, 10, None)).await;
    let o = check(alerts_only(&proxy.url)).await;
    assert_eq!(
        o.errors,
        [err(
            ErrorTier::Api,
            "alerts",
            "503 Service Unavailable (from a peer that does not answer like a Prometheus API; its body is not shown)"
        )]
    );
    assert_eq!(proxy.seen().len(), 5, "the default policy makes five attempts");
}

#[tokio::test]
async fn a_server_that_never_answers_is_unreachable_after_the_read_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let o = check(json!({"url": base, "readTimeoutSeconds": 1,
                         "queries": [{"name": "q", "query": "up", "warning": 1}]}))
    .await;
    let elapsed = started.elapsed();
    let silent = format!("{base}: no answer within the read timeout of 1s");
    assert_eq!(
        o.errors,
        [err(ErrorTier::Unreachable, "alerts", &silent), err(ErrorTier::Unreachable, "query q", &silent)]
    );
    assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

// ---------------------------------------------------------------------------------------
// TLS, against the test apiserver: a real TLS peer whose CA is known and that answers
// anonymous requests with 403.

fn tls(extra: Value) -> PrometheusTarget {
    let mut v = json!({"url": var("MC_KUBE_SERVER"), "alerts": {}});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    target(v)
}

fn ca_pem() -> String {
    std::fs::read_to_string(var("MC_KUBE_CA")).unwrap()
}

const FORBIDDEN: &str = "403 Forbidden (the credentials may not read this API)";

#[tokio::test]
async fn a_ca_bundle_from_a_secret_verifies_the_server() {
    let pem = ca_pem();
    let t = tls(json!({"caSecretRef": {"name": "ca", "key": "ca.crt"}}));
    let o = check_with(&t, &ctx(&[("ca", "ca.crt", &pem)])).await;
    assert_eq!(o.errors, [err(ErrorTier::Forbidden, "alerts", FORBIDDEN)]);
    assert!(!o.insecure);

    let mut t = t;
    t.auth = serde_json::from_value(json!({"bearerTokenSecretRef": {"name": "tok", "key": "t"}})).unwrap();
    let o = check_with(&t, &ctx(&[("ca", "ca.crt", &pem), ("tok", "t", &var("MC_ADMIN_TOKEN"))])).await;
    let not_found = "404 Not Found (is the URL, with its path prefix, that of a Prometheus-compatible API?)";
    assert_eq!(o.errors, [err(ErrorTier::Api, "alerts", not_found)]);
}

/// A TCP relay to `upstream` that counts connections, to see how often a client tried.
async fn relay(upstream: &str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (upstream, count) = (upstream.to_string(), Arc::new(AtomicUsize::new(0)));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    (format!("https://127.0.0.1:{port}"), count)
}

#[tokio::test]
async fn an_unknown_ca_is_unreachable_and_not_retried() {
    let server = var("MC_KUBE_SERVER");
    let (url, connections) = relay(server.trim_start_matches("https://")).await;
    let o = check_with(&target(json!({"url": url})), &ctx(&[])).await;
    let message =
        format!("{url}: error sending request: client error (Connect): invalid peer certificate: UnknownIssuer");
    assert_eq!(o.errors, [err(ErrorTier::Unreachable, "alerts", &message)]);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn skipping_tls_verification_is_marked_insecure() {
    let o = check_with(&tls(json!({"insecureSkipTlsVerify": true})), &ctx(&[])).await;
    assert_eq!(o.errors, [err(ErrorTier::Forbidden, "alerts", FORBIDDEN)]);
    assert!(o.insecure);
}

#[tokio::test]
async fn a_bad_ca_bundle_is_a_config_error() {
    let t = tls(json!({"caSecretRef": {"name": "ca", "key": "ca.crt"}}));
    let o = check_with(&t, &ctx(&[("ca", "ca.crt", "not a certificate")])).await;
    assert_eq!(
        o.errors,
        [TargetError {
            tier: ErrorTier::Config,
            scope: None,
            message: "CA bundle in Secret ca key \"ca.crt\" holds no PEM certificate".into()
        }]
    );
}

/// A run works on at most `in_flight` targets at once, however many the spec lists: 30
/// targets against a peer that holds every connection for a moment never see more than
/// 4 connections open together, and every target is still reported, in the spec's order.
#[tokio::test]
async fn a_run_checks_at_most_its_bound_of_targets_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (o, m) = (open.clone(), most.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let (o, m) = (o.clone(), m.clone());
            tokio::spawn(async move {
                m.fetch_max(o.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(150)).await;
                let _ = tokio::io::AsyncWriteExt::write_all(
                    &mut stream,
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let targets: Vec<Value> = (0..30).map(|i| json!({"name": format!("p{i:02}"), "url": url})).collect();
    let spec: morningcheck::api::MorningCheckSpec =
        serde_json::from_value(json!({"schedule": "0 7 * * *", "targets": {"prometheus": targets}})).unwrap();
    let mut c = ctx(&[]);
    c.in_flight = morningcheck::collect::in_flight(4);
    let outcomes = morningcheck::collect::collect_all(&spec, &c).await;
    let names: Vec<&str> = outcomes.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, (0..30).map(|i| format!("p{i:02}")).collect::<Vec<_>>());
    assert!(outcomes.iter().all(|o| !o.errors.is_empty()), "every target met the 404");
    let most = most.load(Ordering::SeqCst);
    assert!((1..=4).contains(&most), "{most} connections at once");
}

/// A silence of the test's, expired when dropped (even when the test fails).
struct Silence {
    am: String,
    id: String,
}

impl Silence {
    async fn create(am: &str, alertname: &str) -> Self {
        let now = Timestamp::now();
        let body = json!({
            "matchers": [{"name": "alertname", "value": alertname, "isRegex": false, "isEqual": true}],
            "startsAt": now.to_string(), "endsAt": (now + jiff::SignedDuration::from_hours(1)).to_string(),
            "createdBy": "morningcheck tests", "comment": "known: disks on order",
        });
        let answer: Value = reqwest::Client::new()
            .post(format!("{am}/api/v2/silences"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        Self { am: am.to_string(), id: answer["silenceID"].as_str().unwrap().to_string() }
    }
}

impl Drop for Silence {
    fn drop(&mut self) {
        let url = format!("{}/api/v2/silence/{}", self.am, self.id);
        let _ = std::process::Command::new("curl").args(["-fsS", "-X", "DELETE", &url]).output();
    }
}

/// With its Alertmanager named, a target sees silences: a silence created through the
/// real Alertmanager's API takes the alert out of the findings (counted as silenced, listed
/// on request), and expiring it brings the alert back.
#[tokio::test]
async fn a_silence_in_alertmanager_mutes_the_alert_until_it_expires() {
    let am = var("MC_ALERTMANAGER_URL");
    let url = var("MC_PROMETHEUS_URL");
    let spec = |list: bool| json!({"url": url, "alertmanager": {"url": am, "listMuted": list}});
    let firing = eventually(60, "DiskAlmostFull firing in Alertmanager", || async {
        let o = check(spec(false)).await;
        o.findings.contains(&disk()).then_some(o)
    })
    .await;
    assert!(firing.errors.is_empty(), "{:?}", firing.errors);
    assert!(!firing.facts.contains_key("alertsPending"), "only Prometheus knows pending alerts");

    let silence = Silence::create(&am, "DiskAlmostFull").await;
    let muted = eventually(30, "DiskAlmostFull silenced", || async {
        let o = check(spec(false)).await;
        (!o.findings.contains(&disk()) && o.facts.get("alertsSilenced").copied().unwrap_or(0) >= 1).then_some(o)
    })
    .await;
    assert!(muted.findings.contains(&latency()), "other alerts still fire: {:?}", muted.findings);
    let listed = check(spec(true)).await;
    let entry = listed.findings.iter().find(|f| f.1 == "AlertMuted" && f.2.starts_with("DiskAlmostFull")).unwrap();
    assert_eq!(entry.0, Severity::Info);
    assert!(entry.3.contains(&format!("silenced by {}", silence.id)), "{}", entry.3);

    drop(silence);
    eventually(30, "DiskAlmostFull firing again once the silence expired", || async {
        check(spec(false)).await.findings.contains(&disk()).then_some(())
    })
    .await;
}
