//! What a run is judged against, on the real environment: the diff with the previous run
//! (exact totals for ten thousand findings, the new ones named wherever they rank, a
//! target that could not be checked leaving its findings unknown, the known set kept out
//! of the tenant's namespace and deleted with its MorningCheck), and snoozes.
//!
//! The findings are real series: node-exporter's textfile collector serves what the test
//! writes, the real Prometheus scrapes it, and a query finds every series above 0.

mod common;

use std::sync::Arc;

use common::{TestNamespace, admin, eventually, var};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use morningcheck::api::MorningCheckStatus;
use morningcheck::api::{MorningCheck, Severity};
use morningcheck::clock::Clock;
use morningcheck::clock::SystemClock;
use serde_json::Value;
use serde_json::json;

/// Series `metric{i="…"} 1` for each of `ids`, served by node-exporter until dropped.
struct Series {
    path: std::path::PathBuf,
    metric: String,
}

impl Series {
    fn new(metric: &str) -> Self {
        let dir = std::path::PathBuf::from(var("MC_ENV_DIR")).join("textfile");
        Self { path: dir.join(format!("{metric}.prom")), metric: metric.to_string() }
    }

    /// Serves exactly these series, and waits until Prometheus has scraped them.
    async fn serve(&self, ids: &[String]) {
        let mut text = format!("# TYPE {} gauge\n", self.metric);
        for i in ids {
            text.push_str(&format!("{}{{i=\"{i}\"}} 1\n", self.metric));
        }
        // Written aside and renamed: the collector never reads half a file.
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
        let want = ids.len().to_string();
        let query = format!("count({})", self.metric);
        let url = format!("{}/api/v1/query", var("MC_PROMETHEUS_URL"));
        eventually(60, &format!("Prometheus has {want} series of {}", self.metric), || async {
            let v: serde_json::Value =
                reqwest::Client::new().get(&url).query(&[("query", &query)]).send().await.ok()?.json().await.ok()?;
            let n = v["data"]["result"][0]["value"][1].as_str().unwrap_or("0").to_string();
            (n == want).then_some(())
        })
        .await;
        // One more scrape, so no earlier file lingers in the newest samples.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }
}

impl Drop for Series {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{i:05}")).collect()
}

fn spec(metric: &str, url: &str) -> serde_json::Value {
    json!({"schedule": "0 7 * * *", "timeoutSeconds": 60, "targets": {"prometheus": [{
        "name": "prom", "url": url, "alerts": {"enabled": false},
        "queries": [{"name": "up", "query": metric, "critical": 0.5}]}]}})
}

/// A MorningCheck `mc` whose query finds each series of a metric of its own, served with
/// `ids` at first, and a controller running with `clock`.
struct Checked {
    client: kube::Client,
    ns: TestNamespace,
    metric: String,
    series: Series,
    api: Api<MorningCheck>,
    ctl: common::Running,
}

impl Checked {
    async fn start(prefix: &str, ids: &[String], edit: impl FnOnce(&mut Value), clock: Arc<dyn Clock>) -> Self {
        let client = admin().await;
        common::install_crd(&client).await;
        let ns = TestNamespace::new(&client, prefix).await;
        let metric = format!("mc_{}_{:08x}", prefix.replace('-', "_"), rand::random::<u32>());
        let series = Series::new(&metric);
        series.serve(ids).await;
        let mut s = spec(&metric, &var("MC_PROMETHEUS_URL"));
        edit(&mut s);
        let api = common::create_check(&client, &ns.name, "mc", s).await;
        let ctl = common::Running::start(&client, &ns.name, clock).await;
        Self { client, ns, metric, series, api, ctl }
    }

    /// Runs now with `token` and returns the status once that run is over.
    async fn run(&self, token: &str) -> MorningCheckStatus {
        common::run_now(&self.api, "mc", token).await;
        common::run_finished(&self.api, "mc", token, 120).await
    }
}

/// 10,000 findings, then the same plus 2: exactly 2 new, both named though they rank last
/// of all; then 5 gone: exactly 5 resolved. The streaks count runs.
#[tokio::test]
async fn ten_thousand_findings_diff_exactly() {
    let c = Checked::start("diff-scale", &ids(0..10_000), |_| {}, Arc::new(SystemClock)).await;
    let st = c.run("one").await;
    let run = st.last_run.as_ref().unwrap();
    assert_eq!(run.counts.critical, 10_000, "{:?}", run.targets[0].errors);
    assert!(!run.diff.has_previous);
    let known = st.known_findings.clone().expect("the known set is kept");
    assert_eq!((known.findings, known.run_id.as_str()), (10_000, "run-now-one"));

    c.series.serve(&[ids(0..10_000), vec!["new-a".into(), "new-b".into()]].concat()).await;
    let st = c.run("two").await;
    let d = &st.last_run.as_ref().unwrap().diff;
    assert_eq!((d.new_total, d.still_failing_total, d.resolved_total, d.unknown_total), (2, 10_000, 0, 0));
    let mut new: Vec<&str> = d.new.iter().map(|f| f.object.as_str()).collect();
    new.sort();
    assert_eq!(new.len(), 2);
    assert!(new[0].contains("new-a") && new[1].contains("new-b"), "{new:?}");
    assert!(d.still_failing.iter().all(|f| f.runs == Some(2)));

    c.series.serve(&[ids(5..10_000), vec!["new-a".into(), "new-b".into()]].concat()).await;
    let st = c.run("three").await;
    let d = &st.last_run.as_ref().unwrap().diff;
    assert_eq!((d.new_total, d.still_failing_total, d.resolved_total), (0, 9_997, 5));
    assert_eq!(d.resolved.len(), 5, "the resolved are named: {:?}", d.resolved);
    assert!(d.resolved.iter().all(|f| f.severity == Severity::Critical && f.runs == Some(2)));
    let longest = d.still_failing.iter().find(|f| f.runs == Some(3)).expect("a finding of all three runs");
    let first = st.history.last().unwrap();
    assert_eq!(first.run_id, "run-now-one");
    assert!(longest.since.as_ref().is_some_and(|s| s.0 <= first.slot.0 + jiff::SignedDuration::from_secs(60)));
    assert!(d.still_failing.iter().any(|f| f.runs == Some(2)) || d.still_failing.len() == 20);

    // The known set lives in the operator's namespace, not the tenant's, and is small.
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "morningcheck-system");
    let known = st.known_findings.clone().unwrap();
    let cm = cms.get(&known.config_map).await.unwrap();
    let size: usize = cm.binary_data.as_ref().unwrap().values().map(|b| b.0.len()).sum();
    assert!(size < 250 * 1024, "two runs of 10,000 findings take {size} bytes");
    assert_eq!(cm.binary_data.as_ref().unwrap().len(), 2, "the recorded run's and the new one's");
    let theirs: Api<ConfigMap> = Api::namespaced(c.client.clone(), &c.ns.name);
    let names: Vec<String> =
        theirs.list(&Default::default()).await.unwrap().items.into_iter().filter_map(|c| c.metadata.name).collect();
    assert!(names.iter().all(|n| !n.starts_with("morningcheck-known")), "{names:?}");
    c.ctl.stop().await;
}

/// A target that can't be checked leaves its findings unknown, not resolved; the next run
/// that checks it compares with the last run that did.
#[tokio::test]
async fn an_unchecked_targets_findings_are_unknown_until_it_is_checked_again() {
    let c = Checked::start("diff-unknown", &ids(0..64), |_| {}, Arc::new(SystemClock)).await;
    let st = c.run("one").await;
    assert_eq!(st.last_run.as_ref().unwrap().counts.critical, 64);

    // The Prometheus is out of reach for a run.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    point(&c.api, &c.metric, &format!("http://127.0.0.1:{dead}")).await;
    let st = c.run("two").await;
    let run = st.last_run.as_ref().unwrap();
    assert!(run.incomplete);
    let d = &run.diff;
    assert_eq!((d.new_total, d.resolved_total, d.still_failing_total, d.unknown_total), (0, 0, 0, 64), "{d:?}");

    point(&c.api, &c.metric, &var("MC_PROMETHEUS_URL")).await;
    c.series.serve(&ids(0..60)).await;
    let st = c.run("three").await;
    let d = &st.last_run.as_ref().unwrap().diff;
    assert_eq!((d.new_total, d.resolved_total, d.still_failing_total, d.unknown_total), (0, 4, 60, 0), "{d:?}");
    assert!(d.still_failing.iter().all(|f| f.runs == Some(2)), "the run that could not look does not count");
    c.ctl.stop().await;
}

/// Points the MorningCheck's Prometheus target at `url`.
async fn point(api: &Api<MorningCheck>, metric: &str, url: &str) {
    let patch = json!({"spec": spec(metric, url)});
    api.patch("mc", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

/// The known set goes with its MorningCheck: deleted once the MorningCheck is gone.
#[tokio::test]
async fn the_known_set_goes_with_its_morningcheck() {
    let c = Checked::start("diff-sweep", &ids(0..3), |_| {}, Arc::new(SystemClock)).await;
    let st = c.run("one").await;
    let name = st.known_findings.unwrap().config_map;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "morningcheck-system");
    assert!(cms.get_opt(&name).await.unwrap().is_some());
    c.api.delete("mc", &Default::default()).await.unwrap();
    c.ctl.stop().await;
    // A new controller sweeps at its start (the sweep then runs every ten minutes).
    let ctl = common::Running::start(&c.client, &c.ns.name, Arc::new(SystemClock)).await;
    eventually(60, "the known set deleted", || async { cms.get_opt(&name).await.unwrap().is_none().then_some(()) })
        .await;
    ctl.stop().await;
}

/// A snooze hides a finding from the result until its date (the clock injected), is
/// listed with its reason, says once that it ended; one past 90 days is refused.
#[tokio::test]
async fn a_snooze_holds_until_its_date_and_says_once_that_it_ended() {
    let now = jiff::Timestamp::now();
    let day = |days: i64| (now + jiff::SignedDuration::from_hours(24 * days)).strftime("%Y-%m-%d").to_string();
    let clock = Arc::new(morningcheck::clock::ManualClock::new(now));
    let snoozes = json!([
        {"check": "QueryThreshold", "object": "up: *i=\"disk-*", "until": day(3), "reason": "OPS-7, disks on order"},
        {"check": "*", "object": "*", "until": day(200), "reason": "everything, forever"},
    ]);
    let ids = ["disk-1".into(), "disk-2".into(), "web-1".into()];
    // Suspended: the days the clock skips hold 07:00 slots, and only the run-nows should run.
    let edit = |s: &mut Value| {
        s["suspend"] = json!(true);
        s["snoozes"] = snoozes;
    };
    let c = Checked::start("snooze", &ids, edit, clock.clone()).await;

    let run = c.run("one").await.last_run.unwrap();
    assert_eq!((run.counts.critical, run.counts.snoozed, run.counts.total), (1, 2, 3), "{:?}", run.counts);
    assert_eq!(run.result, morningcheck::api::RunResult::Critical, "the one not snoozed");
    let snoozed = &run.snoozes.findings;
    assert_eq!(snoozed.len(), 2);
    assert!(snoozed.iter().all(|f| f.reason == "OPS-7, disks on order" && f.severity == Severity::Critical));
    assert_eq!(run.snoozes.refused.len(), 1);
    assert!(run.snoozes.refused[0].note.as_deref().unwrap().contains("more than 90 days"));
    assert!(run.snoozes.expired.is_empty());

    // Four days on: the snooze is over, the findings count again, and it says so once.
    clock.set(now + jiff::SignedDuration::from_hours(24 * 4));
    let run = c.run("two").await.last_run.unwrap();
    assert_eq!((run.counts.critical, run.counts.snoozed), (3, 0));
    assert_eq!(run.snoozes.expired.len(), 1);
    assert_eq!((run.diff.new_total, run.diff.still_failing_total), (0, 3), "back, not new");
    clock.set(now + jiff::SignedDuration::from_hours(24 * 5));
    let run = c.run("three").await.last_run.unwrap();
    assert!(run.snoozes.expired.is_empty(), "said once");
    c.ctl.stop().await;
}
