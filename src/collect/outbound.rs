//! The outbound allow-list at the edge: before anything is sent to a URL a MorningCheck
//! names, its host is checked against the admin's policy, and resolved when only the
//! allowed networks could admit it. The addresses that passed are returned, so that the
//! connection goes to exactly those and a second lookup can't answer differently.

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use super::error;
use crate::api::{ErrorTier, TargetError};
use crate::tenancy::{Grants, HostVerdict};

const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A host name and the checked addresses to connect to, for `reqwest`'s `resolve_to_addrs`.
pub type Pinned = Option<(String, Vec<SocketAddr>)>;

/// Checks `url` for `what` (e.g. "Prometheus URL"); `Some` pins the host's addresses.
pub async fn check(grants: &Grants, url: &Url, what: &str) -> Result<Pinned, TargetError> {
    let host = url.host_str().unwrap_or_default();
    match grants.host(host, what) {
        HostVerdict::Allowed => Ok(None),
        HostVerdict::Denied(d) => Err(denied(d.to_string())),
        HostVerdict::Resolve => {
            let port = url.port_or_known_default().unwrap_or(443);
            let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await;
            let addrs: Vec<SocketAddr> = match lookup {
                Ok(Ok(a)) => a.collect(),
                Ok(Err(e)) => {
                    return Err(error(ErrorTier::Unreachable, format!("{what} host {host}: cannot resolve: {e}")));
                }
                Err(_) => {
                    return Err(error(ErrorTier::Unreachable, format!("{what} host {host}: resolving timed out")));
                }
            };
            if addrs.is_empty() {
                return Err(error(ErrorTier::Unreachable, format!("{what} host {host}: no address")));
            }
            for a in &addrs {
                grants.address_allowed(a.ip(), what).map_err(|d| denied(format!("{d} (it resolves to {})", a.ip())))?;
            }
            Ok(Some((host.to_string(), addrs)))
        }
    }
}

/// A refusal by the tenancy policy.
pub fn denied(message: String) -> TargetError {
    error(ErrorTier::PolicyDenied, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::Policy;

    fn grants(yaml: &str) -> Grants {
        let p: Policy = serde_saphyr::from_str(yaml).unwrap();
        let spec = serde_saphyr::from_str("schedule: '@daily'\ntargets: {kubernetes: [{name: l}]}").unwrap();
        p.grants("team-a", "platform", &spec)
    }

    #[tokio::test]
    async fn names_resolve_into_allowed_networks_or_are_refused() {
        let g = grants("outbound: {allowedCidrs: [127.0.0.0/8]}");
        let pinned = check(&g, &Url::parse("http://localhost:9090/").unwrap(), "Prometheus URL").await.unwrap();
        let (host, addrs) = pinned.expect("a name is pinned to its checked addresses");
        assert_eq!(host, "localhost");
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 9090), "{addrs:?}");
        let g = grants("outbound: {allowedCidrs: [10.0.0.0/8]}");
        let e = check(&g, &Url::parse("http://localhost:9090/").unwrap(), "Prometheus URL").await.unwrap_err();
        assert_eq!(e.tier, ErrorTier::PolicyDenied);
        assert!(e.message.contains("resolves to 127.0.0.1") || e.message.contains("resolves to ::1"), "{}", e.message);
        let e = check(&g, &Url::parse("http://169.254.169.254/latest").unwrap(), "Prometheus URL").await.unwrap_err();
        assert!(e.message.contains("tenancy.outbound"), "{}", e.message);
        assert_eq!(check(&grants(""), &Url::parse("http://x.invalid/").unwrap(), "x").await.unwrap(), None);
    }
}
