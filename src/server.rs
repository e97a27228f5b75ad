//! The operator's HTTP endpoints: `/metrics`, `/healthz`, `/readyz`.
//!
//! `/metrics` names MorningChecks and counts findings per namespace, so it is served only
//! to a client the cluster vouches for, the way controller-runtime's secure metrics and
//! kube-rbac-proxy do: the bearer token is checked with a TokenReview, then the user it
//! belongs to with a SubjectAccessReview for `get` on the non-resource URL `/metrics`.
//! Decisions are cached for a minute. `/healthz` and `/readyz` stay open for the kubelet.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};
use prometheus_client::registry::Registry;

/// How `/metrics` is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsAuth {
    /// TokenReview and SubjectAccessReview against the cluster (the default).
    Kubernetes,
    /// Anyone who reaches the port (local development).
    None,
}

#[derive(Clone)]
pub struct Health {
    pub registry: Arc<Registry>,
    /// Set once the CRD is served and the watch runs (or this replica stands by).
    pub ready: Arc<AtomicBool>,
    /// The authenticator of `/metrics`; `None` serves it to anyone.
    pub auth: Option<Arc<Authenticator>>,
}

/// What a token may do with `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allowed,
    /// Authenticated, but RBAC does not grant `get` on `/metrics`.
    Forbidden,
    /// Not a valid token.
    Unauthenticated,
}

/// Checks bearer tokens with the apiserver, remembering each decision for [`CACHE_TTL`].
pub struct Authenticator {
    client: kube::Client,
    hasher: RandomState,
    cache: Mutex<HashMap<u64, (Instant, Decision)>>,
}

const CACHE_TTL: Duration = Duration::from_secs(60);
const CACHE_MAX: usize = 256;
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

impl Authenticator {
    pub fn new(client: kube::Client) -> Self {
        Self { client, hasher: RandomState::new(), cache: Mutex::new(HashMap::new()) }
    }

    async fn decide(&self, token: &str) -> Result<Decision, String> {
        // Keyed by a keyed hash: the cache never holds a token.
        let key = self.hasher.hash_one(token);
        let now = Instant::now();
        if let Some((at, d)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && now.duration_since(*at) < CACHE_TTL
        {
            return Ok(*d);
        }
        let d = tokio::time::timeout(REVIEW_TIMEOUT, self.review(token))
            .await
            .map_err(|_| "the apiserver did not answer the review in time".to_string())??;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (at, _)| now.duration_since(*at) < CACHE_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, (now, d));
        Ok(d)
    }

    async fn review(&self, token: &str) -> Result<Decision, String> {
        let review = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_string()), audiences: None },
            ..Default::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| format!("TokenReview: {e}"))?;
        let status = reviewed.status.unwrap_or_default();
        let Some(user) = status.user.filter(|_| status.authenticated == Some(true)) else {
            return Ok(Decision::Unauthenticated);
        };
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some("/metrics".into()),
                    verb: Some("get".into()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &sar)
            .await
            .map_err(|e| format!("SubjectAccessReview: {e}"))?;
        let allowed = reviewed.status.is_some_and(|s| s.allowed);
        Ok(if allowed { Decision::Allowed } else { Decision::Forbidden })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

async fn metrics(State(h): State<Health>, headers: HeaderMap) -> Response {
    if let Some(auth) = &h.auth {
        let Some(token) = bearer(&headers) else {
            return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "a bearer token is required\n")
                .into_response();
        };
        match auth.decide(token).await {
            Ok(Decision::Allowed) => {}
            Ok(Decision::Unauthenticated) => return (StatusCode::UNAUTHORIZED, "invalid token\n").into_response(),
            Ok(Decision::Forbidden) => {
                return (StatusCode::FORBIDDEN, "RBAC does not allow get on /metrics\n").into_response();
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not review a /metrics client");
                return (StatusCode::SERVICE_UNAVAILABLE, "could not review the token\n").into_response();
            }
        }
    }
    let body = crate::metrics::encode(&h.registry);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(h): State<Health>) -> (StatusCode, &'static str) {
    if h.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

/// Serves until the process ends.
pub async fn serve(addr: SocketAddr, health: Health) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The bound address: with port 0 the system picks one, and this line tells which.
    let addr = listener.local_addr()?;
    let protected = health.auth.is_some();
    tracing::info!(%addr, metrics_auth = protected, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, router(health)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_tokens_are_taken() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc.def".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc.def"));
        h.insert(header::AUTHORIZATION, "Basic dXNlcjpw".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "bearer  ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
