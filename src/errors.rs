//! Errors of the three peers sorted into tiers, in one place: the Kubernetes API, the
//! HTTP APIs of Prometheus and Alertmanager, and AWS. A tier tells the reader what to
//! fix (credentials, permissions, the address, the request); the message says what
//! was attempted and what the peer answered, scrubbed of secrets and bounded.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

use crate::api::{ErrorTier, TargetError};
use crate::clip::{Limit, clip};

/// The most a target error's message holds, in bytes: a status carries hundreds of them.
pub const ERROR_MESSAGE_BYTES: usize = 1024;

/// A target's error: scrubbed of every secret the run holds, and bounded.
pub fn error(tier: ErrorTier, message: impl Into<String>) -> TargetError {
    let message = crate::redact::scrub(&message.into());
    TargetError { tier, scope: None, message: clip(&message, Limit::Bytes(ERROR_MESSAGE_BYTES)).into_owned() }
}

/// The error and its sources, joined: the useful part is often the innermost cause.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = c.source();
    }
    s
}

pub fn config_error(message: impl Into<String>) -> TargetError {
    error(ErrorTier::Config, message)
}

// ---------------------------------------------------------------------------------------
// The Kubernetes API

/// Classifies a kube client error; `action` names what was attempted, e.g. `list pods`.
pub fn kube_error(e: &kube::Error, action: &str) -> TargetError {
    let (tier, message) = match e {
        kube::Error::Api(s) => {
            let tier = match s.code {
                401 => ErrorTier::Unauthorized,
                403 => ErrorTier::Forbidden,
                429 => ErrorTier::Throttled,
                400 | 422 => ErrorTier::BadRequest,
                _ => ErrorTier::Api,
            };
            let what = match s.code {
                403 => format!("RBAC denies {action}: {}", s.message),
                401 => format!("{action}: unauthorized (token expired, revoked or invalid): {}", s.message),
                _ => format!("{action}: {} ({})", s.message, s.code),
            };
            (tier, what)
        }
        kube::Error::Auth(a) => (ErrorTier::Unauthorized, format!("{action}: {a}")),
        kube::Error::InferConfig(c) => (ErrorTier::Config, format!("{action}: {c}")),
        other => (ErrorTier::Unreachable, format!("{action}: {}", error_chain(other))),
    };
    error(tier, message)
}

/// Whether a kube error is worth retrying: connection problems, 429 and 5xx.
pub fn kube_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// HTTP APIs: Prometheus and Alertmanager

/// The tier of an HTTP error status.
pub fn http_tier(status: u16) -> ErrorTier {
    match status {
        401 => ErrorTier::Unauthorized,
        403 => ErrorTier::Forbidden,
        429 => ErrorTier::Throttled,
        400 | 422 => ErrorTier::BadRequest,
        _ => ErrorTier::Api,
    }
}

/// The tier of a Prometheus error answer by its `errorType`, then its HTTP status.
pub fn prometheus_tier(error_type: &str, status: u16) -> ErrorTier {
    match error_type {
        "bad_data" | "execution" => ErrorTier::BadRequest,
        _ => http_tier(status),
    }
}

// ---------------------------------------------------------------------------------------
// AWS

/// Error codes of missing, expired or rejected credentials.
const UNAUTHORIZED_CODES: &[&str] = &[
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
    "RequestExpired",
];
/// Error codes of an authenticated caller that is not allowed.
const FORBIDDEN_CODES: &[&str] = &["UnauthorizedOperation", "AccessDenied", "AccessDeniedException"];
/// Error codes of throttling (the SDK's retry strategy retries these with backoff).
const THROTTLED_CODES: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "EC2ThrottledException",
    "SlowDown",
];

/// Classifies an SDK error of `action` (an IAM action such as `ec2:DescribeInstances`).
pub fn sdk_error<E>(e: &SdkError<E, HttpResponse>, action: &str) -> TargetError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    if let Some(c) = credentials_error(e) {
        return error(ErrorTier::Unauthorized, format!("no AWS credentials: {}", error_chain(c)));
    }
    match e {
        SdkError::ServiceError(ctx) => {
            service_error(ctx.err().code(), ctx.err().message(), ctx.raw().status().as_u16(), action)
        }
        SdkError::TimeoutError(_) => {
            error(ErrorTier::Unreachable, format!("{action}: timed out (attempt timeout or the run's deadline)"))
        }
        SdkError::DispatchFailure(_) => {
            error(ErrorTier::Unreachable, format!("{action}: cannot reach the endpoint: {}", error_chain(e)))
        }
        SdkError::ResponseError(r) => error(
            ErrorTier::Api,
            format!("{action}: unreadable answer (HTTP {}): {}", r.raw().status().as_u16(), error_chain(e)),
        ),
        SdkError::ConstructionFailure(_) => {
            error(ErrorTier::Config, format!("{action}: cannot build the request: {}", error_chain(e)))
        }
        _ => error(ErrorTier::Api, format!("{action}: {}", error_chain(e))),
    }
}

/// The credential provider's error, when resolving credentials is what failed.
fn credentials_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a CredentialsError> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(found) = c.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        cur = c.source();
    }
    None
}

/// Classifies an error answered by the service, by its code and then its HTTP status.
pub fn service_error(code: Option<&str>, message: Option<&str>, status: u16, action: &str) -> TargetError {
    let text = message.map(short_message).unwrap_or_default();
    let code_or_status = code.map_or_else(|| format!("HTTP {status}"), str::to_string);
    let is = |list: &[&str]| code.is_some_and(|c| list.contains(&c));
    let (tier, what) = if is(UNAUTHORIZED_CODES) || (code.is_none() && status == 401) {
        (ErrorTier::Unauthorized, format!("{action}: credentials expired or rejected ({code_or_status}): {text}"))
    } else if is(FORBIDDEN_CODES) || (code.is_none() && status == 403) {
        (ErrorTier::Forbidden, format!("access denied: missing permission {action} ({code_or_status}): {text}"))
    } else if code == Some("OptInRequired") {
        (ErrorTier::Forbidden, format!("{action}: the region is not enabled for this account (OptInRequired): {text}"))
    } else if is(THROTTLED_CODES) || (code.is_none() && status == 429) {
        (
            ErrorTier::Throttled,
            format!("{action}: still throttled after retries with backoff ({code_or_status}): {text}"),
        )
    } else if code.is_some_and(|c| c.starts_with("Invalid") || c == "MissingParameter" || c == "ValidationError") {
        (ErrorTier::BadRequest, format!("{action}: request rejected ({code_or_status}): {text}"))
    } else {
        let code = code.map(|c| format!("{c} ")).unwrap_or_default();
        (ErrorTier::Api, format!("{action}: {code}HTTP {status}: {text}"))
    };
    error(tier, what.trim_end_matches(": ").to_string())
}

/// Drops the opaque "Encoded authorization failure message" EC2 appends to denials.
fn short_message(m: &str) -> String {
    let m = m.split(" Encoded authorization failure message").next().unwrap_or(m).trim();
    clip(m, Limit::Chars(400)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_ec2::operation::describe_instance_status::DescribeInstanceStatusError;

    #[test]
    fn http_statuses_and_prometheus_error_types() {
        assert_eq!(http_tier(401), ErrorTier::Unauthorized);
        assert_eq!(http_tier(403), ErrorTier::Forbidden);
        assert_eq!(http_tier(429), ErrorTier::Throttled);
        assert_eq!(http_tier(422), ErrorTier::BadRequest);
        assert_eq!(http_tier(502), ErrorTier::Api);
        assert_eq!(prometheus_tier("bad_data", 400), ErrorTier::BadRequest);
        assert_eq!(prometheus_tier("execution", 422), ErrorTier::BadRequest);
        assert_eq!(prometheus_tier("unavailable", 503), ErrorTier::Api);
    }

    #[test]
    fn a_chain_names_the_innermost_cause_once() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let outer = std::io::Error::other(inner);
        assert_eq!(error_chain(&outer), "connection refused");
        #[derive(Debug, thiserror::Error)]
        #[error("list pods")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"));
        assert_eq!(error_chain(&e), "list pods: timed out");
    }

    #[test]
    fn service_errors_by_code() {
        let e = service_error(
            Some("ExpiredToken"),
            Some("The security token included in the request is expired"),
            400,
            "ec2:DescribeInstances",
        );
        assert_eq!(e.tier, ErrorTier::Unauthorized);
        for code in ["InvalidClientTokenId", "AuthFailure", "UnrecognizedClientException"] {
            assert_eq!(service_error(Some(code), None, 401, "ec2:DescribeInstances").tier, ErrorTier::Unauthorized);
        }
        let e = service_error(
            Some("UnauthorizedOperation"),
            Some("You are not authorized to perform this operation. Encoded authorization failure message: AbCdEf"),
            403,
            "ec2:DescribeInstanceStatus",
        );
        assert_eq!(e.tier, ErrorTier::Forbidden);
        assert_eq!(
            e.message,
            "access denied: missing permission ec2:DescribeInstanceStatus (UnauthorizedOperation): \
             You are not authorized to perform this operation."
        );
        assert_eq!(service_error(Some("AccessDenied"), None, 403, "sts:AssumeRole").tier, ErrorTier::Forbidden);
        let e =
            service_error(Some("RequestLimitExceeded"), Some("Request limit exceeded."), 503, "ec2:DescribeInstances");
        assert_eq!(e.tier, ErrorTier::Throttled);
        assert!(e.message.contains("still throttled"), "{}", e.message);
        assert_eq!(service_error(Some("Throttling"), None, 400, "a").tier, ErrorTier::Throttled);
        assert_eq!(service_error(Some("InvalidParameterValue"), None, 400, "a").tier, ErrorTier::BadRequest);
        assert_eq!(service_error(None, None, 403, "a").tier, ErrorTier::Forbidden);
        let e = service_error(None, None, 500, "ec2:DescribeInstances");
        assert_eq!((e.tier, e.message.as_str()), (ErrorTier::Api, "ec2:DescribeInstances: HTTP 500"));
        let e =
            service_error(Some("InternalError"), Some("An internal error has occurred"), 500, "ec2:DescribeInstances");
        assert_eq!(e.message, "ec2:DescribeInstances: InternalError HTTP 500: An internal error has occurred");
    }

    #[test]
    fn sdk_errors_by_kind() {
        let meta = ErrorMetadata::builder().code("UnauthorizedOperation").message("not allowed").build();
        let raw = HttpResponse::new(403.try_into().unwrap(), "".into());
        let e = SdkError::service_error(DescribeInstanceStatusError::generic(meta), raw);
        let t = sdk_error(&e, "ec2:DescribeInstanceStatus");
        assert_eq!(t.tier, ErrorTier::Forbidden);
        assert!(t.message.contains("ec2:DescribeInstanceStatus"), "{}", t.message);

        let e: SdkError<DescribeInstanceStatusError, HttpResponse> = SdkError::timeout_error("deadline");
        assert_eq!(sdk_error(&e, "ec2:DescribeInstances").tier, ErrorTier::Unreachable);

        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e: SdkError<DescribeInstanceStatusError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(refused)));
        let t = sdk_error(&e, "ec2:DescribeInstances");
        assert_eq!(t.tier, ErrorTier::Unreachable);
        assert!(t.message.contains("connection refused"), "{}", t.message);

        let missing = CredentialsError::not_loaded("no providers in chain provided credentials");
        let e: SdkError<DescribeInstanceStatusError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other(Box::new(missing), None));
        let t = sdk_error(&e, "ec2:DescribeInstances");
        assert_eq!(t.tier, ErrorTier::Unauthorized);
        assert!(t.message.starts_with("no AWS credentials: "), "{}", t.message);
        assert!(t.message.contains("no providers in chain"), "{}", t.message);
    }
}
