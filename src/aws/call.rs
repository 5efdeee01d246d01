//! The one place an AWS call is made from: [`Caller::call`] sends the request, retries what is
//! worth retrying with jittered exponential backoff, classifies a failure into a bounded
//! [`FailureReason`] and records the call in [`Telemetry`]. Operations are the [`Operation`]
//! enum, never strings typed at the call site.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::limit::{Answer, Limits};
pub use crate::model::AwsCallError;
use crate::model::FailureReason;
pub use crate::operation::Operation;
use crate::telemetry::Telemetry;

/// Error codes AWS uses for throttling across services and protocols.
const THROTTLING_CODES: [&str; 8] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
];

const ACCESS_DENIED_CODES: [&str; 6] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "AWSOrganizationsNotInUseException",
    "AccountNotManagementOrDelegatedAdministratorException",
];

/// Map an AWS error code (and HTTP status, when known) to a reason.
pub fn reason_for_code(code: Option<&str>, status: Option<u16>) -> FailureReason {
    match code {
        Some(c) if THROTTLING_CODES.contains(&c) => FailureReason::Throttled,
        Some(c) if ACCESS_DENIED_CODES.contains(&c) => FailureReason::AccessDenied,
        Some("RequestTimeout" | "RequestTimeoutException") => FailureReason::Timeout,
        Some("ExpiredToken" | "ExpiredTokenException") => FailureReason::ExpiredToken,
        _ if status == Some(429) => FailureReason::Throttled,
        _ => FailureReason::Other,
    }
}

/// The one line said when the exporter has no AWS credentials of its own.
pub const NO_CREDENTIALS: &str = "no AWS credentials found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance, task, IRSA or EKS Pod Identity role provides them";

/// Whether the error, or anything it was caused by, is the credentials chain finding nothing
/// (or failing to load).
fn is_missing_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Classify any SDK error of `operation`. The message is one line.
pub fn classify<E>(operation: Operation, err: &SdkError<E, HttpResponse>) -> AwsCallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if is_missing_credentials(err) {
        return AwsCallError {
            operation,
            reason: FailureReason::NoCredentials,
            message: NO_CREDENTIALS.into(),
        };
    }
    let reason = match err {
        SdkError::TimeoutError(_) => FailureReason::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => FailureReason::Timeout,
        SdkError::DispatchFailure(_) => FailureReason::Network,
        SdkError::ServiceError(s) => reason_for_code(s.err().code(), Some(s.raw().status().as_u16())),
        SdkError::ResponseError(r) => reason_for_code(None, Some(r.raw().status().as_u16())),
        _ => FailureReason::Other,
    };
    let message = match err {
        SdkError::ServiceError(s) => match s.err().code() {
            Some(code) => format!("{code}: {}", s.err().message().unwrap_or("no message")),
            None => not_aws(s.raw()),
        },
        SdkError::ResponseError(r) => not_aws(r.raw()),
        other => DisplayErrorContext(other).to_string(),
    };
    AwsCallError {
        operation,
        reason,
        message: one_line(&message),
    }
}

/// An answer without an AWS error in it (a proxy's or an AWS-compatible endpoint's page).
fn not_aws(raw: &HttpResponse) -> String {
    let content_type = raw.headers().get("content-type").unwrap_or("no content type");
    format!(
        "HTTP {} ({content_type}) without an AWS error in the body: not an answer from AWS, or an endpoint that does not serve this operation",
        raw.status().as_u16()
    )
}

/// Newlines and other control characters from AWS or the SDK, folded so that a log event stays
/// one line.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

tokio::task_local! {
    /// When the audit whose calls this task makes must be done (`account_timeout`).
    static DEADLINE: Instant;
}

/// Run `work` (one account's audit) with its deadline known to the calls it makes: a throttled
/// call may then be retried past [`RetryPolicy::max_attempts`] while its next wait still ends
/// well before the deadline.
pub async fn before_deadline<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// How calls are retried: the same in the first refresh and the thousandth (no shared quota that
/// sustained throttling could drain). The caller's own deadline (`account_timeout` around an
/// audit) ends retries earlier: no retry is made whose wait and attempt would end past it
/// ([`fits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Attempts per call of an audit that AWS keeps throttling: past `max_attempts`, a throttled
    /// call is tried again while the longest wait before it, plus twice the last attempt's time,
    /// ends before the audit's deadline ([`before_deadline`]). Where AWS's rate is at or below
    /// one call per latency, about a third of the answers are throttling even at one call in
    /// flight; the account should wait its turn rather than fail, and throttling that outlasts
    /// `account_timeout` is still reported as throttling, not as a timeout.
    pub max_throttled_attempts: u32,
    /// Backoff before the second attempt, doubling after each further one ...
    pub base: Duration,
    /// ... up to this; each wait is drawn uniformly from zero to that bound (full jitter).
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_throttled_attempts: 16,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The longest wait after failed attempt `attempt` (1-based).
    fn bound(&self, attempt: u32) -> Duration {
        self.base.saturating_mul(1u32 << (attempt - 1).min(20)).min(self.cap)
    }

    /// The wait after failed attempt `attempt` (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        self.bound(attempt).mul_f64(fastrand::f64())
    }

    /// Whether a call whose attempt `attempt` failed with `reason` after `took` gets another.
    fn again(&self, attempt: u32, reason: FailureReason, took: Duration, deadline: Option<Instant>) -> bool {
        if attempt < self.max_attempts {
            return true;
        }
        reason == FailureReason::Throttled
            && attempt < self.max_throttled_attempts
            && deadline.is_some_and(|d| Instant::now() + self.bound(attempt) + took * 2 < d)
    }
}

/// Whether a wait of `wait` and then an attempt taking twice as long as the last one (`took`)
/// end before the audit's deadline. When they would not, the call gives up now with its own
/// error (`ServiceUnavailable` from `ListMFADevices`, say) rather than sleeping into the
/// deadline: the audit's other parts, the summary above all, are then still served, and the
/// failure is named for what it is, not as a timeout of the whole account.
fn fits(wait: Duration, took: Duration, deadline: Option<Instant>) -> bool {
    deadline.is_none_or(|d| Instant::now() + wait + took * 2 < d)
}

/// Whether a failed attempt is worth another: throttling, a server-side error (5xx), a timeout
/// or a connection that failed on the way. Never access denied, bad input or missing
/// credentials.
fn retryable<E>(err: &SdkError<E, HttpResponse>, classified: &AwsCallError) -> bool {
    match classified.reason {
        FailureReason::Throttled | FailureReason::Timeout | FailureReason::Network => true,
        FailureReason::Other => match err {
            SdkError::ServiceError(s) => s.raw().status().is_server_error(),
            SdkError::ResponseError(r) => r.raw().status().is_server_error(),
            _ => false,
        },
        _ => false,
    }
}

/// Performs, retries, classifies and records AWS calls, each under its operation's adaptive
/// limit of calls in flight and, for the calls of audits, their shared bound ([`Limits`]). Cheap to clone; clones share the limits.
#[derive(Clone, Debug)]
pub struct Caller {
    telemetry: Telemetry,
    retry: RetryPolicy,
    limits: Arc<Limits>,
}

impl Caller {
    /// `ceiling`: the most calls of one operation in flight at once, and of all audits' calls
    /// together (`concurrency`).
    pub fn new(telemetry: Telemetry, ceiling: usize) -> Self {
        Caller {
            limits: Arc::new(Limits::new(ceiling, telemetry.clone())),
            telemetry,
            retry: RetryPolicy::default(),
        }
    }

    /// Send one call of `operation`; `send` builds and sends the request, once per attempt.
    pub async fn call<T, E, F, Fut>(&self, operation: Operation, send: F) -> Result<T, AwsCallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let answer = self.call_or_absent(operation, send, |_| false).await?;
        Ok(answer.expect("no error is taken as absent"))
    }

    /// Like [`Caller::call`] for an operation some of whose service errors are an answer rather
    /// than a failure (`GetLoginProfile`'s `NoSuchEntity`: there is no password): `absent` picks
    /// them out, and they come back as `Ok(None)`.
    pub async fn call_or_absent<T, E, F, Fut>(
        &self,
        operation: Operation,
        mut send: F,
        absent: impl Fn(&E) -> bool,
    ) -> Result<Option<T>, AwsCallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut attempt = 1;
        let deadline = DEADLINE.try_with(|d| *d).ok();
        let result = loop {
            let mut permit = self.limits.acquire(operation).await;
            let started = Instant::now();
            // Boxed: an SDK call's future is several KiB, and an audit awaits up to five at
            // once (plus the summary and AssumeRoot before them); inline they made each of the
            // `concurrency` audits in flight a 57 KiB future, boxed 17 KiB, and only the
            // attempts being sent hold the rest.
            let sent = Box::pin(send()).await;
            let took = started.elapsed();
            // An answer (a value, or an error that means "absent"), or a failure and its class.
            let sent = match sent {
                Ok(v) => Ok(Some(v)),
                Err(e) if e.as_service_error().is_some_and(&absent) => Ok(None),
                Err(e) => {
                    let classified = classify(operation, &e);
                    Err((e, classified))
                }
            };
            permit.answered(match &sent {
                Ok(_) => Answer::Other,
                Err((_, c)) if c.reason == FailureReason::Throttled => {
                    self.telemetry.record_throttled(operation);
                    Answer::Throttled
                }
                Err((SdkError::ServiceError(_) | SdkError::ResponseError(_), _)) => Answer::Other,
                Err(_) => Answer::None,
            });
            drop(permit);
            match sent {
                Ok(answer) => break Ok(answer),
                Err((e, classified)) => {
                    if retryable(&e, &classified) && self.retry.again(attempt, classified.reason, took, deadline) {
                        let wait = self.retry.backoff(attempt);
                        if fits(wait, took, deadline) {
                            self.telemetry.record_retry(operation, classified.reason);
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            continue;
                        }
                    }
                    break Err(classified);
                }
            }
        };
        self.telemetry
            .record_call(operation, result.as_ref().err().map(|e| e.reason));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_reasons() {
        use FailureReason::*;
        for (code, status, reason) in [
            (Some("Throttling"), 400, Throttled),
            (Some("TooManyRequestsException"), 400, Throttled),
            (Some("AccessDenied"), 403, AccessDenied),
            (Some("AccessDeniedException"), 400, AccessDenied),
            (Some("ExpiredToken"), 403, ExpiredToken),
            (None, 429, Throttled),
            (Some("ServiceUnavailable"), 503, Other),
        ] {
            assert_eq!(reason_for_code(code, Some(status)), reason, "{code:?} {status}");
        }
    }

    #[test]
    fn messages_are_folded_to_one_line() {
        assert_eq!(one_line("a\nb\r\n\tc d"), "a b c d");
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let p = RetryPolicy::default();
        for attempt in 1..=30 {
            let bound = p.base.saturating_mul(1 << (attempt - 1).min(20)).min(p.cap);
            assert_eq!(p.bound(attempt), bound);
            for _ in 0..20 {
                assert!(p.backoff(attempt) <= bound);
            }
        }
    }

    #[test]
    fn only_throttling_with_time_left_in_the_audit_goes_past_max_attempts() {
        let p = RetryPolicy::default();
        let ms = Duration::from_millis;
        let far = Some(Instant::now() + Duration::from_secs(600));
        for reason in [FailureReason::Throttled, FailureReason::Network, FailureReason::Other] {
            assert!(p.again(p.max_attempts - 1, reason, ms(50), None), "{reason:?}");
        }
        assert!(p.again(p.max_attempts, FailureReason::Throttled, ms(50), far));
        assert!(!p.again(p.max_attempts, FailureReason::Network, ms(50), far));
        // Outside an audit (the listing), no deadline: no more than max_attempts.
        assert!(!p.again(p.max_attempts, FailureReason::Throttled, ms(50), None));
        // The next wait may be the cap (10 s): 9 s left is not enough.
        let near = Some(Instant::now() + Duration::from_secs(9));
        assert!(!p.again(p.max_attempts, FailureReason::Throttled, ms(50), near));
        // A slow attempt needs room for another like it.
        let room = Some(Instant::now() + Duration::from_secs(12));
        assert!(p.again(p.max_attempts, FailureReason::Throttled, ms(50), room));
        assert!(!p.again(p.max_attempts, FailureReason::Throttled, ms(1500), room));
        assert!(!p.again(p.max_throttled_attempts, FailureReason::Throttled, ms(50), far));
    }

    #[test]
    fn a_retry_that_would_end_past_the_deadline_is_not_made() {
        let ms = Duration::from_millis;
        assert!(fits(ms(6400), ms(50), None), "outside an audit, no deadline");
        let soon = Some(Instant::now() + Duration::from_secs(2));
        assert!(fits(ms(100), ms(50), soon));
        assert!(
            !fits(ms(1900), ms(50), soon),
            "the wait and the next attempt pass the deadline"
        );
        assert!(
            !fits(ms(100), ms(1000), soon),
            "no room for another attempt as slow as the last"
        );
    }

    #[test]
    fn operations_name_their_service_and_aws_name() {
        assert_eq!(Operation::ListMfaDevices.to_string(), "iam:ListMFADevices");
        assert_eq!(Operation::AssumeRoot.to_string(), "sts:AssumeRoot");
        let names: std::collections::BTreeSet<_> = Operation::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), Operation::ALL.len(), "names are distinct");
    }
}
