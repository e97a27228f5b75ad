//! Layered settings: flags > environment (`MORNINGCHECK_*`, `SLACK_WEBHOOK_URL`) >
//! config file > defaults. clap handles flags, environment and defaults; this fills in
//! from the config file whatever was left at its default.

use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;

/// The config file (`--config`, default `~/.config/morningcheck/config.yaml`).
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileConfig {
    pub output: Option<String>,
    pub timeout: Option<u64>,
    pub connect_timeout: Option<u64>,
    pub fail_on: Option<String>,
    pub dry_run: Option<bool>,
    pub contexts: Option<Vec<String>>,
    pub prometheus_urls: Option<Vec<String>>,
    pub regions: Option<Vec<String>>,
    pub slack_webhook_url: Option<String>,
    pub controller: Option<ControllerFile>,
}

/// The controller's settings in the config file.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControllerFile {
    pub metrics_addr: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub max_concurrent_runs: Option<usize>,
    pub max_targets_in_flight: Option<usize>,
    pub leader_elect: Option<bool>,
    pub watch_namespace: Option<String>,
    /// What each namespace's MorningChecks may use of the operator.
    pub tenancy: Option<crate::tenancy::Policy>,
}

pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("morningcheck/config.yaml"))
}

/// Reads the config file: an explicit path must exist; the default path may be absent.
pub fn load(explicit: Option<&Path>) -> Result<FileConfig, String> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match default_path() {
            Some(p) if p.exists() => p,
            _ => return Ok(FileConfig::default()),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    let file: FileConfig =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {}", path.display(), crate::redact::parse_error(&e)))?;
    if let Some(url) = &file.slack_webhook_url {
        crate::redact::remember(url);
    }
    Ok(file)
}

/// Whether the user set `id` by flag or environment variable.
pub fn explicit(m: &ArgMatches, id: &str) -> bool {
    matches!(m.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
}

/// The flag's (or env's) value when set explicitly, else the file's, else the default.
pub fn layer<T>(m: &ArgMatches, id: &str, flag: T, file: Option<T>) -> T {
    if explicit(m, id) { flag } else { file.unwrap_or(flag) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn cmd() -> Command {
        Command::new("t").arg(Arg::new("timeout").long("timeout").env("MC_TEST_TIMEOUT_UNSET_X").default_value("30"))
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let m = cmd().get_matches_from(["t", "--timeout", "5"]);
        assert_eq!(layer(&m, "timeout", m.get_one::<String>("timeout").unwrap().clone(), Some("9".into())), "5");
        let m = cmd().get_matches_from(["t"]);
        assert_eq!(layer(&m, "timeout", m.get_one::<String>("timeout").unwrap().clone(), Some("9".into())), "9");
        assert_eq!(layer(&m, "timeout", m.get_one::<String>("timeout").unwrap().clone(), None), "30");
    }

    #[test]
    fn file_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "output: json\ntimeout: 10\n").unwrap();
        let c = load(Some(&p)).unwrap();
        assert_eq!((c.output.as_deref(), c.timeout), (Some("json"), Some(10)));
        std::fs::write(&p, "outptu: json\n").unwrap();
        assert!(load(Some(&p)).unwrap_err().contains("outptu"));
        assert!(load(Some(&dir.path().join("missing.yaml"))).is_err());
    }
}
