use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use morningcheck::cli::{self, RunArgs, config, exit};
use morningcheck::clock::SystemClock;
use morningcheck::controller::leader::{LeaderElector, LeaseConfig};
use morningcheck::controller::{self, Context};
use morningcheck::metrics::Metrics;
use morningcheck::server::{self, Authenticator, Health, MetricsAuth};
use morningcheck::telemetry::{self, LogFormat};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(name = "morningcheck", version, about = "The morning check of Kubernetes clusters, Prometheus and EC2")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: watch MorningChecks and run each on its schedule.
    Controller(Box<ControllerArgs>),
    /// Run the checks of MorningCheck manifests once and print a report.
    Run(RunArgs),
    /// Print the CustomResourceDefinition as YAML.
    Crd,
}

#[derive(Args, Debug)]
struct ControllerArgs {
    /// Config file (its `controller:` section); flags and environment win over it.
    #[arg(long, env = "MORNINGCHECK_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "MORNINGCHECK_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Who may read /metrics: `kubernetes`, a bearer token the cluster authenticates
    /// (TokenReview) and authorizes for `get` on /metrics (SubjectAccessReview); `none`,
    /// anyone who reaches the port.
    #[arg(long, env = "MORNINGCHECK_METRICS_AUTH", value_enum, default_value = "kubernetes")]
    metrics_auth: MetricsAuth,
    /// Log format.
    #[arg(long, env = "MORNINGCHECK_LOG_FORMAT", value_enum, default_value = "plain")]
    log_format: LogFormat,
    /// Log filter when RUST_LOG is unset.
    #[arg(long, env = "MORNINGCHECK_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Runs in progress at once across all MorningChecks.
    #[arg(long, env = "MORNINGCHECK_MAX_CONCURRENT_RUNS", default_value_t = 10)]
    max_concurrent_runs: usize,
    /// Targets one run checks at once (an AWS region counts as one).
    #[arg(long, env = "MORNINGCHECK_MAX_TARGETS_IN_FLIGHT", default_value_t = morningcheck::collect::TARGETS_IN_FLIGHT)]
    max_targets_in_flight: usize,
    /// Watch MorningChecks of this namespace only. All namespaces when unset.
    #[arg(long, env = "MORNINGCHECK_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Elect one leader among replicas through a Lease; only the leader runs checks.
    #[arg(long, env = "MORNINGCHECK_LEADER_ELECT", default_value_t = false)]
    leader_elect: bool,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the Lease.
    #[arg(long, env = "MORNINGCHECK_LEASE_NAME", default_value = "morningcheck-leader")]
    lease_name: String,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a Lease is valid without renewal.
    #[arg(long, env = "MORNINGCHECK_LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds the leader keeps trying to renew before it stops acting.
    #[arg(long, env = "MORNINGCHECK_RENEW_DEADLINE_SECONDS", default_value_t = 10)]
    renew_deadline_seconds: u64,
    /// Seconds a stopping controller gives its runs in flight to finish; then it exits
    /// anyway and the next leader runs them again. Keep it under the pod's grace period.
    #[arg(long, env = "MORNINGCHECK_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    shutdown_grace_seconds: u64,
    /// The tenancy policy: the config file's `controller.tenancy` section.
    #[arg(skip)]
    tenancy: morningcheck::tenancy::Policy,
}

fn main() -> ExitCode {
    morningcheck::install_crypto_provider();
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            let help = matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion);
            return ExitCode::from(if help { 0 } else { exit::USAGE });
        }
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let rt = || tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match cli.command {
        Command::Crd => {
            print!("{}", morningcheck::crd::yaml());
            ExitCode::SUCCESS
        }
        Command::Controller(args) => {
            let m = matches.subcommand_matches("controller").expect("controller matches");
            match layered_controller(*args, m) {
                Ok(args) => rt().block_on(run_controller(args)),
                Err(e) => {
                    eprintln!("morningcheck: config: {e}");
                    ExitCode::from(exit::CONFIG)
                }
            }
        }
        Command::Run(args) => {
            let m = matches.subcommand_matches("run").expect("run matches");
            ExitCode::from(rt().block_on(run_cli(args, m)))
        }
    }
}

/// Fills controller settings left at their defaults from the config file.
fn layered_controller(mut a: ControllerArgs, m: &ArgMatches) -> Result<ControllerArgs, String> {
    let file = config::load(a.config.as_deref())?.controller.unwrap_or_default();
    if let Some(addr) = file.metrics_addr {
        let addr = addr.parse().map_err(|e| format!("controller.metricsAddr {addr:?}: {e}"))?;
        a.metrics_addr = config::layer(m, "metrics_addr", a.metrics_addr, Some(addr));
    }
    if let Some(f) = file.log_format {
        let f =
            <LogFormat as clap::ValueEnum>::from_str(&f, true).map_err(|_| format!("controller.logFormat {f:?}"))?;
        a.log_format = config::layer(m, "log_format", a.log_format, Some(f));
    }
    a.log_level = config::layer(m, "log_level", a.log_level, file.log_level);
    a.max_concurrent_runs = config::layer(m, "max_concurrent_runs", a.max_concurrent_runs, file.max_concurrent_runs);
    a.max_targets_in_flight =
        config::layer(m, "max_targets_in_flight", a.max_targets_in_flight, file.max_targets_in_flight);
    a.leader_elect = config::layer(m, "leader_elect", a.leader_elect, file.leader_elect);
    a.watch_namespace = config::layer(m, "watch_namespace", a.watch_namespace, file.watch_namespace.map(Some));
    a.tenancy = file.tenancy.unwrap_or_default();
    a.tenancy.check()?;
    Ok(a)
}

async fn run_cli(args: RunArgs, m: &ArgMatches) -> u8 {
    let level = match (args.quiet, args.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info,kube=warn,aws=warn",
        _ => "debug,hyper=info,rustls=info,aws_smithy_runtime=info",
    };
    telemetry::init(LogFormat::Plain, level);
    let file = match config::load(args.config.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("morningcheck: config: {e}");
            return exit::CONFIG;
        }
    };
    let settings = match cli::settings(&args, m, file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("morningcheck: config: {e}");
            return exit::CONFIG;
        }
    };
    let mut docs = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let text = match cli::input::read(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("morningcheck: {name}: {e}");
                return match e {
                    cli::input::ReadError::Io(_) => exit::NO_INPUT,
                    cli::input::ReadError::NotText(_) => exit::DATA,
                };
            }
        };
        match cli::input::parse(&name, &text) {
            Ok(d) => docs.extend(d),
            Err(e) => {
                eprintln!("morningcheck: {e}");
                return exit::DATA;
            }
        }
    }
    for d in &mut docs {
        cli::apply_overrides(&mut d.check, &settings);
        let problems = cli::problems(&d.check);
        for p in &problems {
            eprintln!("morningcheck: {} (document {}): {p}", d.file, d.index + 1);
        }
        if !problems.is_empty() {
            return exit::DATA;
        }
    }
    let mut reports = Vec::new();
    let mut undelivered = false;
    for d in &docs {
        let report = cli::run_once(&d.check, &settings).await;
        print!("{}", cli::render(&d.check, &report, settings.output));
        if let Some(e) = cli::post(&d.check, &report, &settings).await {
            eprintln!("morningcheck: {e}");
            undelivered = true;
        }
        reports.push(report);
    }
    // A digest that did not reach Slack is what a CronJob must not swallow: it has no
    // other way to tell (no status, no metrics).
    if undelivered { exit::NOT_DELIVERED } else { cli::exit_code(&reports, settings.fail_on) }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    info!("shutdown requested");
}

/// The wall clock. Test builds (the `test-hooks` feature) can set it off by
/// `MORNINGCHECK_TEST_CLOCK_OFFSET_SECONDS`, as a replica whose clock is wrong.
fn wall_clock() -> Arc<dyn morningcheck::clock::Clock> {
    #[cfg(feature = "test-hooks")]
    if let Some(secs) = std::env::var("MORNINGCHECK_TEST_CLOCK_OFFSET_SECONDS").ok().and_then(|v| v.parse().ok()) {
        return Arc::new(morningcheck::clock::OffsetClock(jiff::SignedDuration::from_secs(secs)));
    }
    Arc::new(SystemClock)
}

async fn run_controller(args: ControllerArgs) -> ExitCode {
    telemetry::init(args.log_format, &args.log_level);
    let config = match kube::Config::infer().await {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "no Kubernetes client configuration (in-cluster service account or kubeconfig)");
            return ExitCode::from(2);
        }
    };
    let client = match kube::Client::try_from(config.clone()) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "cannot build the Kubernetes client");
            return ExitCode::from(2);
        }
    };
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let ready = Arc::new(AtomicBool::new(false));
    let auth = (args.metrics_auth == MetricsAuth::Kubernetes).then(|| Arc::new(Authenticator::new(client.clone())));
    let health = Health { registry: Arc::new(registry), ready: ready.clone(), auth };
    let addr = args.metrics_addr;
    tokio::spawn(async move {
        if let Err(e) = server::serve(addr, health).await {
            error!(error = %e, %addr, "metrics server failed");
            std::process::exit(2);
        }
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    // Ready once the CRD is served.
    loop {
        if controller::crd_installed(&client, args.watch_namespace.as_deref()).await {
            break;
        }
        info!("waiting for the MorningCheck CRD (kubectl apply -f crds/morningcheck.yaml)");
        tokio::select! {
            _ = stopped() => return ExitCode::SUCCESS,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }

    let identity = args.identity.clone().unwrap_or_else(|| format!("morningcheck-{}", std::process::id()));
    let clock = wall_clock();
    let elector = args.leader_elect.then(|| {
        Arc::new(LeaderElector::new(
            client.clone(),
            LeaseConfig {
                namespace: args.lease_namespace.clone(),
                name: args.lease_name.clone(),
                identity: identity.clone(),
                lease_duration: Duration::from_secs(args.lease_duration_seconds),
                renew_deadline: Duration::from_secs(args.renew_deadline_seconds),
                retry_period: Duration::from_secs(2),
                clock: clock.clone(),
            },
        ))
    });
    if let Some(el) = &elector {
        ready.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::select! {
            _ = stopped() => return ExitCode::SUCCESS,
            _ = el.acquire() => {}
        }
        let el = el.clone();
        tokio::spawn(async move {
            el.hold().await;
            // A replica that lost the lease must stop at once, before the lease can expire
            // for another: the new leader runs any run left in progress again.
            error!("leadership lost; exiting");
            std::process::exit(1);
        });
    }

    let ctx = match Context::new(config, clock, metrics, args.max_concurrent_runs, Some(identity)) {
        Ok(c) => Arc::new(
            c.with_policy(args.tenancy.clone(), args.lease_namespace.clone())
                .with_targets_in_flight(args.max_targets_in_flight),
        ),
        Err(e) => {
            error!(error = %e, "cannot build the Kubernetes client");
            return ExitCode::from(2);
        }
    };
    // On SIGTERM no new run starts (runs waiting for a permit give up theirs, unclaimed);
    // runs in flight get the shutdown grace to finish, then are left to the next leader.
    let closing = ctx.clone();
    let stop_taking = {
        let stop = stopped();
        async move {
            stop.await;
            closing.runner.close();
        }
    };
    let grace = Duration::from_secs(args.shutdown_grace_seconds);
    let handed_off = async {
        stopped().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = controller::run(ctx, args.watch_namespace.clone(), stop_taking, ready) => {}
        () = handed_off => warn!(?grace, "runs still in flight after the shutdown grace: the next leader runs them again"),
    }
    if let Some(el) = &elector {
        el.release().await;
    }
    ExitCode::SUCCESS
}
