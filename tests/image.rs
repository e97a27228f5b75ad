//! The container image, built here without a container engine (scripts/image.sh, with
//! crane) and run as a node would run it: its config, its files, and its entrypoint
//! started from its own unpacked root file system, read-only, as uid 65532, in a private
//! mount and PID namespace, against the test environment. The Dockerfile is checked to
//! describe the same image.
//!
//! The image is built once per test binary (the release build of the binary is the long
//! part; cargo skips it when target/<host>/release/morningcheck is up to date).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::chart::text;
use common::{TestNamespace, admin, install_crd, var};
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

const BINARY: &str = "/usr/local/bin/morningcheck";
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// What a container runtime gives a process with no PATH in the image's config.
const RUNTIME_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The host name the Prometheus target is reached by, from the /etc/hosts the test mounts
/// (as Kubernetes mounts one into every container).
const PROMETHEUS_HOST: &str = "prometheus.morningcheck.test";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------
// The image: scripts/image.sh, then its OCI layout read as a registry would serve it

struct Image {
    manifest: Value,
    config: Value,
    /// The one layer, gzip-compressed, as it sits in the layout.
    layer: PathBuf,
}

fn blob(layout: &Path, digest: &Value) -> PathBuf {
    let digest = digest.as_str().expect("digest");
    let hex = digest.strip_prefix("sha256:").unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    layout.join("blobs/sha256").join(hex)
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("scripts/image.sh")).current_dir(repo()).stdin(Stdio::null());
        // The crane the test environment built, when it is up; otherwise the script finds
        // (or builds) it itself.
        if let Some(crane) = std::env::var("MORNINGCHECK_CRANE").ok().or_else(crane_from_env) {
            cmd.env("MORNINGCHECK_CRANE", crane);
        }
        let t0 = Instant::now();
        let out = cmd.output().expect("bash");
        assert!(out.status.success(), "scripts/image.sh failed:\n{}", text(&out));
        eprintln!("scripts/image.sh ({:.0?}):\n{}", t0.elapsed(), String::from_utf8_lossy(&out.stdout));

        let layout = repo().join("target/image/oci");
        let index = json_file(&layout.join("index.json"));
        let manifests = index["manifests"].as_array().expect("index.json manifests");
        assert_eq!(manifests.len(), 1, "one image in the layout: {index}");
        let manifest = json_file(&blob(&layout, &manifests[0]["digest"]));
        let config = json_file(&blob(&layout, &manifest["config"]["digest"]));
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1, "one layer: {manifest}");
        let layer = blob(&layout, &layers[0]["digest"]);
        Image { manifest, config, layer }
    })
}

/// MC_CRANE_BIN of the test environment, when it is up.
fn crane_from_env() -> Option<String> {
    let dir =
        std::env::var("MORNINGCHECK_TESTENV").unwrap_or_else(|_| format!("{}/.testenv", env!("CARGO_MANIFEST_DIR")));
    let text = std::fs::read_to_string(format!("{dir}/env")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("MC_CRANE_BIN=")).map(str::to_string).filter(|p| Path::new(p).is_file())
}

/// The image's entrypoint, from its config.
fn entrypoint() -> Vec<String> {
    strings(&image().config["config"]["Entrypoint"])
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap_or_default().to_string()).collect()).unwrap_or_default()
}

/// `tar -tv` of the layer: (mode string, owner, mtime, path) per entry.
fn listing() -> Vec<(String, String, String, String)> {
    let out = Command::new("tar")
        .args(["--numeric-owner", "--full-time", "-tvzf"])
        .arg(&image().layer)
        .env("TZ", "UTC")
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar -tv of the layer:\n{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 6, "tar listing line: {l}");
            (f[0].to_string(), f[1].to_string(), format!("{} {}", f[3], f[4]), f[5..].join(" "))
        })
        .collect()
}

/// Unpacks the image's root file system into `dir/rootfs` and returns its path.
fn unpack(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir(&root).unwrap();
    let out = Command::new("tar")
        .args(["--numeric-owner", "--same-owner", "-xpzf"])
        .arg(&image().layer)
        .arg("-C")
        .arg(&root)
        .output()
        .expect("tar");
    assert!(out.status.success(), "unpacking the layer:\n{}", text(&out));
    set_mode(&root, 0o755);
    root
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

// ---------------------------------------------------------------------------------------
// The config and the files

#[test]
fn config_runs_the_controller_as_nonroot_and_leaks_nothing_of_the_build() {
    let img = image();
    assert_eq!(img.manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(img.manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    assert_eq!(img.manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");

    let c = &img.config;
    assert_eq!(c["os"], "linux");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(c["architecture"], arch);
    let cfg = &c["config"];
    assert_eq!(cfg["User"], "65532:65532", "numeric, so runAsNonRoot can verify it");
    assert_eq!(entrypoint(), [BINARY, "controller"], "the chart's Deployment relies on this entrypoint");
    assert!(cfg["Cmd"].is_null(), "no Cmd: {cfg}");
    assert_eq!(cfg["WorkingDir"], "/");
    assert_eq!(cfg["ExposedPorts"], json!({"8080/tcp": {}}));
    assert!(strings(&cfg["Env"]).is_empty(), "no environment from the build: {cfg}");
    assert_eq!(
        cfg["Labels"],
        json!({
            "org.opencontainers.image.title": "morningcheck",
            "org.opencontainers.image.description": "Kubernetes operator: the morning check of clusters, Prometheus and EC2, with one Slack digest",
            "org.opencontainers.image.licenses": "Apache-2.0",
            "org.opencontainers.image.version": env!("CARGO_PKG_VERSION"),
        })
    );
    // Nothing of the machine that built it: no host paths, no user names, no variables.
    let whole = c.to_string();
    for leak in [env!("CARGO_MANIFEST_DIR"), "/root", "CARGO", "RUSTFLAGS", "HOME="] {
        assert!(!whole.contains(leak), "the config mentions {leak:?}: {whole}");
    }
}

#[test]
fn root_file_system_holds_the_binary_the_certificates_and_nonroot_alone() {
    let entries = listing();
    let paths: Vec<&str> = entries.iter().map(|e| e.3.trim_end_matches('/')).collect();
    assert_eq!(
        paths,
        [
            "etc",
            "etc/group",
            "etc/passwd",
            "etc/ssl",
            "etc/ssl/certs",
            "etc/ssl/certs/ca-certificates.crt",
            "usr",
            "usr/local",
            "usr/local/bin",
            "usr/local/bin/morningcheck",
        ],
        "exactly these files, in name order"
    );
    for (mode, owner, mtime, path) in &entries {
        assert_eq!(owner, "0/0", "{path} owned by root");
        assert_eq!(mtime, "1970-01-01 00:00:00", "{path}: time zero, so the layer is reproducible");
        let want = match path.trim_end_matches('/') {
            p if path.ends_with('/') => format!("drwxr-xr-x {p}"),
            "usr/local/bin/morningcheck" => "-rwxr-xr-x usr/local/bin/morningcheck".into(),
            p => format!("-rw-r--r-- {p}"),
        };
        assert_eq!(format!("{mode} {}", path.trim_end_matches('/')), want);
    }
    for shell in ["sh", "bash", "dash", "ash", "busybox", "su", "sudo"] {
        assert!(!paths.iter().any(|p| p.rsplit('/').next() == Some(shell)), "{shell} in the image");
    }
    assert!(!paths.contains(&"bin") && !paths.contains(&"usr/bin"), "no /bin, no /usr/bin");

    let dir = tempdir();
    let root = unpack(dir.path());
    assert_eq!(
        std::fs::read_to_string(root.join("etc/passwd")).unwrap(),
        "nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n"
    );
    assert_eq!(std::fs::read_to_string(root.join("etc/group")).unwrap(), "nonroot:x:65532:\n");
    let bundle = std::fs::read(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert_eq!(bundle, std::fs::read(CA_BUNDLE).unwrap(), "Debian's CA bundle, as it is");
    let certs = String::from_utf8_lossy(&bundle).matches("-----BEGIN CERTIFICATE-----").count();
    assert!(certs > 100, "{certs} certificates in the bundle");
    let elf = std::fs::read(root.join("usr/local/bin/morningcheck")).unwrap();
    assert!(!has_interpreter(&elf), "the binary is statically linked: the image has no libc");
    // Test hooks (a clock set off, a given AWS environment) are built for tests alone.
    let hook = b"MORNINGCHECK_TEST_CLOCK_OFFSET_SECONDS";
    assert!(!elf.windows(hook.len()).any(|w| w == hook), "the image's binary carries the test hooks");
    let test_build = std::fs::read(common::binary()).unwrap();
    assert!(test_build.windows(hook.len()).any(|w| w == hook), "the test build has the hook this looks for");
}

/// Whether an ELF64 file names a program interpreter (PT_INTERP), i.e. is dynamically linked.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 3
    })
}

#[test]
fn dockerfile_builds_the_same_image() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    // The final stage: its instructions, continuation lines joined.
    let joined = dockerfile.replace("\\\n", " ");
    let last = joined.rsplit("\nFROM ").next().unwrap();
    let lines: Vec<String> = last
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(lines[0], "scratch", "the final stage starts from nothing");
    let instructions: Vec<&str> = lines[1..].iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(instructions, ["LABEL", "COPY", "USER", "WORKDIR", "EXPOSE", "ENTRYPOINT"], "{lines:?}");
    let find = |i: &str| lines.iter().find_map(|l| l.strip_prefix(&format!("{i} "))).unwrap().to_string();
    assert_eq!(find("COPY"), "--from=build /rootfs/ /", "the files scripts/image.sh --rootfs laid out, nothing else");
    assert!(
        dockerfile.contains("scripts/image.sh --rootfs /rootfs"),
        "the build stage lays out the files with the script"
    );

    let cfg = &image().config["config"];
    assert_eq!(find("USER"), cfg["User"].as_str().unwrap());
    assert_eq!(find("WORKDIR"), cfg["WorkingDir"].as_str().unwrap());
    assert_eq!(format!("{}/tcp", find("EXPOSE")), *cfg["ExposedPorts"].as_object().unwrap().keys().next().unwrap());
    let ep: Value = serde_json::from_str(&find("ENTRYPOINT")).expect("ENTRYPOINT in exec form");
    assert_eq!(strings(&ep), entrypoint());
    let label_re = regex::Regex::new(r#"([a-z.]+)="([^"]*)""#).unwrap();
    let labels: BTreeMap<String, Value> =
        label_re.captures_iter(&find("LABEL")).map(|c| (c[1].to_string(), json!(c[2].to_string()))).collect();
    let want: BTreeMap<String, Value> =
        cfg["Labels"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(labels, want, "the Dockerfile's labels are the image's");

    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for needed in ["!Cargo.toml", "!Cargo.lock", "!src/", "!scripts/image.sh"] {
        assert!(ignore.lines().any(|l| l.trim() == needed), ".dockerignore lets {needed} into the build context");
    }
}

// ---------------------------------------------------------------------------------------
// The entrypoint, run as a node runs it

fn tempdir() -> tempfile::TempDir {
    // Under target/, not /tmp: the root file system must be on a file system that allows exec.
    let base = repo().join("target/image/test");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new().prefix("root-").tempdir_in(base).unwrap()
}

/// In a new mount and PID namespace: makes the unpacked root a mount of its own, gives it
/// /proc, a /dev with null, zero, random and urandom, and a tmpfs /tmp, bind-mounts each
/// SRC on DST read-only (as the kubelet mounts ConfigMaps, Secrets and /etc/hosts),
/// remounts the root read-only, proves it cannot be written, and execs the command chrooted
/// into it as 65532:65532 with no supplementary groups and no new privileges.
/// Arguments: ROOT [SRC DST]... -- COMMAND...
const SANDBOX: &str = r#"set -eu
root=$1; shift
mount --bind "$root" "$root"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o nosuid,noexec,size=64k,mode=0755 dev "$root/dev"
for d in null zero random urandom; do : >"$root/dev/$d"; mount --bind "/dev/$d" "$root/dev/$d"; done
mount -t tmpfs -o nosuid,nodev,size=16m,mode=1777 tmp "$root/tmp"
while [ "$1" != -- ]; do
  mount --bind "$1" "$root$2"
  mount -o remount,bind,ro,nosuid,nodev "$root$2"
  shift 2
done
shift
mount -o remount,bind,ro,nosuid,nodev "$root"
if (: >"$root/.written") 2>/dev/null; then echo "the root file system is writable" >&2; exit 98; fi
exec setpriv --no-new-privs unshare --root="$root" --wd=/ --setuid=65532 --setgid=65532 "$@"
"#;

/// A container of the image: its unpacked root, the files mounted into it, its environment.
struct Container {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    mounts: Vec<(PathBuf, String)>,
    env: Vec<(String, String)>,
}

impl Container {
    /// The image unpacked, with the mount points a runtime creates, a /config directory
    /// (mounted read-only, as the CronJob mounts its ConfigMap) and an /etc/hosts that
    /// names the Prometheus target.
    fn new() -> Self {
        assert_unshare();
        let dir = tempdir();
        let root = unpack(dir.path());
        for d in ["proc", "dev", "tmp", "config"] {
            std::fs::create_dir(root.join(d)).unwrap();
            set_mode(&root.join(d), 0o755);
        }
        std::fs::write(root.join("etc/hosts"), "").unwrap();
        let config = dir.path().join("config");
        std::fs::create_dir(&config).unwrap();
        set_mode(&config, 0o755);
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, format!("127.0.0.1\tlocalhost\n127.0.0.1\t{PROMETHEUS_HOST}\n")).unwrap();
        set_mode(&hosts, 0o644);
        Self {
            mounts: vec![(config.clone(), "/config".into()), (hosts, "/etc/hosts".into())],
            root,
            config,
            _dir: dir,
            env: vec![],
        }
    }

    /// A file in /config, readable by the container's user.
    fn file(&self, name: &str, content: &str) {
        let path = self.config.join(name);
        std::fs::write(&path, content).unwrap();
        set_mode(&path, 0o644);
    }

    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    fn mount(mut self, src: &Path, dst: &str) -> Self {
        self.mounts.push((src.to_path_buf(), dst.into()));
        self
    }

    /// The command (the image's binary and its arguments) in the container, started.
    fn spawn(&self, args: &[&str]) -> Started {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--pid", "--fork", "--kill-child", "--propagation", "private"])
            .args(["sh", "-c", SANDBOX, "sh"])
            .arg(&self.root);
        for (src, dst) in &self.mounts {
            cmd.arg(src).arg(dst);
        }
        cmd.arg("--")
            .args(args)
            .env_clear()
            // What a runtime sets: PATH (the image has none) and HOME from /etc/passwd.
            .env("PATH", RUNTIME_PATH)
            .env("HOME", "/nonexistent")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Started(Some(cmd.spawn().expect("unshare")))
    }

    /// The command run to completion (at most `secs`).
    fn run(&self, args: &[&str], secs: u64) -> Output {
        let mut started = self.spawn(args);
        let deadline = Instant::now() + Duration::from_secs(secs);
        while started.child().try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = started.child().kill();
                panic!("{args:?} still running after {secs}s:\n{}", text(&started.output()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        started.output()
    }
}

/// A started container, killed (unshare, and with it the namespace's every process) if the
/// test ends before it stopped.
struct Started(Option<Child>);

impl Started {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }

    /// Waits for the end (after `try_wait` said so, or after a kill) and collects the output.
    fn output(mut self) -> Output {
        self.0.take().expect("running").wait_with_output().unwrap()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Asserts that this process may make private mount and PID namespaces.
fn assert_unshare() {
    let probe =
        Command::new("unshare").args(["--mount", "--pid", "--fork", "--propagation", "private", "true"]).output();
    let probe = probe.expect("unshare (util-linux) on PATH");
    assert!(
        probe.status.success(),
        "running the image needs private mount and PID namespaces (root, or CAP_SYS_ADMIN): {}",
        text(&probe)
    );
}

/// A /proc/PID/status field, e.g. `Uid`.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// GET http://addr/path: the status code.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn entrypoint_runs_as_nonroot_on_its_read_only_root() {
    let client = admin().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "image").await;
    let c = Container::new();
    c.file("kubeconfig", &std::fs::read_to_string(var("MC_KUBECONFIG")).unwrap());

    // The binary from its own root: nothing else there to load.
    let out = c.run(&[BINARY, "--version"], 30);
    assert!(out.status.success(), "--version:\n{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("morningcheck {}\n", env!("CARGO_PKG_VERSION")));

    // The entrypoint as the image gives it, `morningcheck controller`, configured as the
    // chart does it (environment), watching a namespace of its own.
    let addr = format!("127.0.0.1:{}", free_port());
    let c = c
        .env("KUBECONFIG", "/config/kubeconfig")
        .env("MORNINGCHECK_METRICS_ADDR", &addr)
        .env("MORNINGCHECK_WATCH_NAMESPACE", &ns.name)
        .env("MORNINGCHECK_LOG_FORMAT", "json");
    let ep = entrypoint();
    let mut started = c.spawn(&ep.iter().map(String::as_str).collect::<Vec<_>>());
    let unshare = started.child().id();
    let ready = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http_status(&addr, "/readyz") == Some(200) {
                break true;
            }
            if Instant::now() > deadline || started.child().try_wait().unwrap().is_some() {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    if !ready {
        let _ = started.child().kill();
        let out = started.output();
        panic!("the controller in the image never became ready on {addr}:\n{}", text(&out));
    }
    assert_eq!(http_status(&addr, "/healthz"), Some(200));

    // The process as the kernel sees it: unshare's one child, the namespace's PID 1, which
    // exec'd the sandbox script, setpriv, unshare and then the binary.
    let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).unwrap();
    let pid: u32 = children.split_whitespace().next().expect("unshare's child").parse().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("usr/local/bin/morningcheck"), "{}", exe.display());
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline.split('\0').filter(|s| !s.is_empty()).collect::<Vec<_>>(), ep);
    assert_eq!(status_field(pid, "Uid"), "65532 65532 65532 65532");
    assert_eq!(status_field(pid, "Gid"), "65532 65532 65532 65532");
    assert_eq!(status_field(pid, "Groups"), "");
    assert_eq!(status_field(pid, "CapEff"), "0000000000000000");
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    assert_eq!(status_field(pid, "NSpid").split(' ').next_back(), Some("1"), "PID 1 of its own namespace");
    // Its root, from its own mount table: the image, read-only.
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root_mount = mountinfo
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .rfind(|f| f.len() > 5 && f[4] == "/")
        .unwrap_or_else(|| panic!("no / in its mountinfo:\n{mountinfo}"));
    assert!(root_mount[5].split(',').any(|o| o == "ro"), "root mounted read-only: {}", root_mount.join(" "));
    assert!(root_mount[3].ends_with("/rootfs"), "its root is the unpacked image: {}", root_mount.join(" "));

    // SIGTERM, as the kubelet stops a pod: a clean exit.
    let kill = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while started.child().try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the controller did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = started.output();
    assert!(out.status.success(), "the controller exits 0 on SIGTERM:\n{}", text(&out));
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("shutdown requested"), "{logs}");
}

/// A Warning Event in `ns` (reason ImageProbe, three times, now), which the Kubernetes
/// checks report as a warning.
async fn plant_event(ns: &str) {
    let now = jiff::Timestamp::now().to_string();
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": "probe.image"},
        "type": "Warning",
        "reason": "ImageProbe",
        "message": "planted by tests/image.rs",
        "count": 3,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "involvedObject": {"kind": "Pod", "name": "probe", "namespace": ns, "apiVersion": "v1"},
        "source": {"component": "tests"},
    }))
    .unwrap();
    Api::<Event>::namespaced(admin().await, ns).create(&PostParams::default(), &event).await.unwrap();
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("a JSON report on stdout ({e}):\n{}", text(out)))
}

fn target<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no target {name} in {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn run_from_the_image_checks_the_test_environment() {
    let client = admin().await;
    let ns = TestNamespace::new(&client, "image-run").await;
    plant_event(&ns.name).await;
    let c = Container::new().env("KUBECONFIG", "/config/kubeconfig").env("NO_COLOR", "1");
    c.file("kubeconfig", &std::fs::read_to_string(var("MC_KUBECONFIG")).unwrap());
    let prometheus = var("MC_PROMETHEUS_URL").replace("127.0.0.1", PROMETHEUS_HOST);
    let ns = &ns.name;
    c.file(
        "check.yaml",
        &format!(
            "apiVersion: morningcheck.io/v1alpha1
kind: MorningCheck
metadata: {{name: image, namespace: {ns}}}
spec:
  schedule: '0 7 * * *'
  targets:
    kubernetes:
    - name: cluster
      namespaces: {{include: [{ns}]}}
      checks: {{nodes: false}}
    prometheus:
    - name: metrics
      url: {prometheus}
      alerts: {{enabled: false}}
      queries:
      - {{name: answer, query: 'vector(42)', warning: 10, critical: 40}}
"
        ),
    );

    // As the CronJob runs it: the binary, `run`, the check from the mounted ConfigMap.
    let out = c.run(&[BINARY, "run", "-f", "/config/check.yaml", "-o", "json", "--fail-on", "critical"], 120);
    assert_eq!(out.status.code(), Some(1), "a critical finding with --fail-on critical exits 1:\n{}", text(&out));
    let r = report(&out);
    assert_eq!(r["check"], format!("{ns}/image"));
    assert_eq!(r["result"], "Critical", "{r}");
    assert_eq!(r["counts"]["critical"], 1, "{r}");
    assert_eq!(r["counts"]["warning"], 1, "{r}");

    let k = target(&r, "cluster");
    assert_eq!(k["result"], "Warning", "{k}");
    assert!(k["errors"].is_null(), "{k}");
    let mut findings = k["findings"].clone();
    for f in findings.as_array_mut().into_iter().flatten() {
        f.as_object_mut().unwrap().remove("since");
    }
    assert_eq!(
        findings,
        json!([{
            "key": format!("EventImageProbe/{ns}/Pod/probe"),
            "severity": "Warning",
            "check": "EventImageProbe",
            "object": format!("{ns}/Pod/probe"),
            "message": "ImageProbe ×3: planted by tests/image.rs",
        }]),
        "{k}"
    );
    assert_eq!(k["facts"]["pods"], 0, "{k}");

    let p = target(&r, "metrics");
    assert_eq!(p["result"], "Critical", "{p}");
    assert!(p["errors"].is_null(), "reached by name through /etc/hosts: {p}");
    let f = &p["findings"][0];
    assert_eq!((&f["check"], &f["severity"]), (&json!("QueryThreshold"), &json!("Critical")));
    assert_eq!(f["message"], "value 42 is above the critical threshold of 40");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_targets_are_verified_against_the_images_ca_bundle() {
    // The test apiserver speaks HTTPS with a certificate of the test CA, which Debian's
    // bundle does not hold. As a Prometheus target, it fails verification with the image's
    // bundle; with the test CA added to the file at the image's bundle path, the TLS
    // handshake succeeds and the answer is the apiserver's own (no Prometheus API there).
    let server = var("MC_KUBE_SERVER");
    let check = format!(
        "apiVersion: morningcheck.io/v1alpha1
kind: MorningCheck
metadata: {{name: tls, namespace: default}}
spec:
  schedule: '0 7 * * *'
  targets:
    prometheus:
    - name: tls
      url: {server}
      connectTimeoutSeconds: 5
      readTimeoutSeconds: 5
"
    );
    let run = |c: &Container| {
        c.file("check.yaml", &check);
        let out = c.run(&[BINARY, "run", "-f", "/config/check.yaml", "-o", "json"], 120);
        assert_eq!(out.status.code(), Some(2), "the target fails either way:\n{}", text(&out));
        let r = report(&out);
        target(&r, "tls")["errors"].clone()
    };

    let errors = run(&Container::new());
    let e = errors.to_string().to_lowercase();
    assert!(e.contains("certificate") || e.contains("issuer"), "refused by TLS verification: {errors}");
    assert_eq!(errors[0]["tier"], "Unreachable", "{errors}");

    let dir = tempdir();
    let bundle = dir.path().join("ca-certificates.crt");
    let mut pem = std::fs::read(CA_BUNDLE).unwrap();
    pem.extend(std::fs::read(var("MC_KUBE_CA")).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    set_mode(&bundle, 0o644);
    let errors = run(&Container::new().mount(&bundle, CA_BUNDLE));
    let e = errors.to_string().to_lowercase();
    assert!(!e.contains("certificate") && !e.contains("issuer"), "past TLS with the test CA in the bundle: {errors}");
    assert_ne!(errors[0]["tier"], "Unreachable", "{errors}");
}
