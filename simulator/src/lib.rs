//! A wire-compatible simulation of one AWS Organization, its member accounts and their root
//! users, reached by AssumeRoot, by roles (AssumeRole) or with the caller's own credentials: the
//! AWS test double of `aws-root-exporter`. It speaks Organizations (JSON 1.1), STS and IAM
//! (Query protocol, XML) and SQS (JSON 1.0) on one address, so the real AWS SDK, boto3 or the
//! AWS CLI can talk to it with `AWS_ENDPOINT_URL`; a control API on a second address changes the
//! world at run time.
//!
//! A [`Scenario`] (a TOML file, see the crate's README) describes the organization; [`start`]
//! serves it on the current Tokio runtime, [`serve`] loads a scenario file, serves it, prints
//! the two addresses (and the queue's URL with `[events]`) and runs until a shutdown future
//! resolves. [`start_many`] and [`serve_many`] serve several organizations, one per scenario, in
//! one world: a caller key belongs to the scenario listing it (any other to the first), a session
//! acts in its account's organization, and `sts:AssumeRole` reaches a role of another
//! organization that trusts the caller's account (the README's "Several organizations").
//!
//! # Control API
//!
//! On the control address, JSON in and out:
//!
//! - `PUT /_simulator/accounts/{account_id}/root` with the scenario's `root` shape as JSON
//!   replaces that account's root user;
//! - `PUT /_simulator/accounts/{account_id}/assume_root` with `{"mode": "ok" | "access_denied"}`
//!   changes how its root session behaves;
//! - `PUT /_simulator/accounts/{account_id}/tags` with the scenario's `tags` shape and
//!   `PUT /_simulator/accounts/{account_id}/roles` with its `roles` shape replace them;
//! - `GET /_simulator/accounts/{account_id}/credential_report` shows the account's latest
//!   credential report (state, generation time, count), and `PUT` with `{"age_seconds": N}` makes
//!   it that old, with `{"corrupt": "drop_field" | "extra_field" | "missing_column" |
//!   "bad_time"}` breaks it (a ragged root row, a missing column, a value that is no time) until
//!   the next generation;
//! - `PUT /_simulator/features` with `{"enabled": ["RootCredentialsManagement", ...]}` sets the
//!   organization's features (`?organization_id=` picks one of several; also for `faults` and
//!   `rate_limits`);
//! - `PUT /_simulator/faults` with a JSON list of faults (the scenario's `[[faults]]` shape) or
//!   an object keyed by operation (the `[faults.OPERATION]` shape) replaces the injected faults;
//! - `PUT /_simulator/rate_limits` with an object keyed by operation (the scenario's
//!   `[rate_limits]` shape) replaces the rate limits, their buckets full;
//! - `GET /_simulator/calls`: calls answered so far, by operation; `GET
//!   /_simulator/calls/throttled`: those answered with the throttling error, by operation;
//! - `POST /_simulator/accounts/{account_id}/root_actions` with `{"action": "CreateAccessKey" |
//!   ..., "access_key_id", "certificate_id", "status", "mfa", "session": "console" |
//!   "assumed_root", "issued_to", "hints"}`, `{"action": "ConsoleLogin", "outcome": "Success" |
//!   "Failure"}` or `{"action": "ApiCall", "event_source", "event_name", "read_only", "session":
//!   "console" | "access_key" | "assumed_root", "issued_to": ARN | "self", "hints"}` performs
//!   one action of the root user (an IAM call, a console sign-in, any other API call) and
//!   queues its EventBridge event; `PUT .../root` queues one event per difference;
//! - `POST /_simulator/queue/messages` with `{"body": "..."}` puts a raw message in the
//!   `[events]` queue, `GET /_simulator/queue` shows its counts (`?queue_url=` picks one of
//!   several).
//!
//! # Events
//!
//! With `[events]`, the AWS endpoint also serves SQS (AWS JSON 1.0): `GetQueueUrl`,
//! `ReceiveMessage` (long polling), `DeleteMessage`, `DeleteMessageBatch`,
//! `ChangeMessageVisibility` on one standard queue, `ENDPOINT/MANAGEMENT_ACCOUNT/NAME`
//! ([`RunningSimulator::queue_url`]), which receives the events of root credential changes.
//!
//! Bodies are read and checked by the scenario file's own code, with its messages. Errors are
//! JSON `{"error": "..."}`: 400 for a body the scenario file would refuse or an account id in a
//! path that is not 12 digits, 404 for an account the organization lacks.

mod control;
mod events;
mod iam;
mod operations;
mod organizations;
mod queue;
mod ratelimit;
mod rng;
mod scenario;
mod sqs;
mod state;
mod sts;
mod wire;

pub use queue::QueueCounts;
pub use scenario::{Scenario, ScenarioError};

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use events::Actor;
use queue::Queue;
use ratelimit::RateLimiter;
use scenario::{FaultKind, LatencySpec};
use state::{RootChange, SessionKind, World};
use wire::{AwsError, header_str, json_ok, json10_ok, parse_authorization, query_ok};

/// Who a request acts as.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    /// Any credentials the simulator did not issue: the exporter's role in the caller account
    /// (the management account, or the IAM delegated administrator).
    Caller { account_id: String },
    /// A root session issued by AssumeRoot.
    Root {
        account_id: String,
        task_policy: String,
        expires: SystemTime,
    },
    /// A role session issued by AssumeRole.
    Role {
        account_id: String,
        role_name: String,
        role_id: String,
        session_name: String,
        /// The role may do what the exporter's own role does in its organization
        /// (`organization_access` in the scenario).
        organization_access: bool,
        expires: SystemTime,
    },
}

impl Principal {
    /// The account of a session the simulator issued (root or role); `None` for the caller's
    /// own credentials.
    pub(crate) fn account_id(&self) -> Option<&str> {
        match self {
            Principal::Caller { .. } => None,
            Principal::Root { account_id, .. } | Principal::Role { account_id, .. } => Some(account_id),
        }
    }

    /// The account the credentials act in.
    pub(crate) fn acting_account(&self) -> &str {
        match self {
            Principal::Caller { account_id }
            | Principal::Root { account_id, .. }
            | Principal::Role { account_id, .. } => account_id,
        }
    }

    /// Whether the credentials may act for the organization (read it, call AssumeRoot): the
    /// caller's own, or a session of a role with `organization_access`.
    pub(crate) fn acts_for_organization(&self) -> bool {
        match self {
            Principal::Caller { .. } => true,
            Principal::Role {
                organization_access, ..
            } => *organization_access,
            Principal::Root { .. } => false,
        }
    }

    /// When temporary credentials expire.
    pub(crate) fn expires(&self) -> Option<SystemTime> {
        match self {
            Principal::Caller { .. } => None,
            Principal::Root { expires, .. } | Principal::Role { expires, .. } => Some(*expires),
        }
    }

    /// The ARN AWS names the caller by (GetCallerIdentity, AccessDenied messages).
    pub(crate) fn arn(&self) -> String {
        match self {
            Principal::Caller { account_id } => {
                format!("arn:aws:sts::{account_id}:assumed-role/{CALLER_ROLE}/{CALLER_SESSION}")
            }
            Principal::Root { account_id, .. } => format!("arn:aws:iam::{account_id}:root"),
            Principal::Role {
                account_id,
                role_name,
                session_name,
                ..
            } => format!("arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}"),
        }
    }
}

/// The role and session names of the caller's own credentials, as GetCallerIdentity shows them.
pub(crate) const CALLER_ROLE: &str = "aws-root-exporter";
pub(crate) const CALLER_SESSION: &str = "simulated";

/// Every operation the simulator serves, by service (Organizations, STS, IAM, SQS): the names
/// that `[latency]`, `[rate_limits]` and faults accept.
pub fn served_operations() -> Vec<&'static str> {
    organizations::OPERATIONS
        .into_iter()
        .chain(operations::STS)
        .chain(operations::IAM)
        .chain(sqs::OPERATIONS)
        .collect()
}

fn expired_token() -> AwsError {
    AwsError::new(
        403,
        "ExpiredToken",
        "The security token included in the request is expired",
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Json,
    Query,
    /// SQS: AWS JSON 1.0 with SQS's own error codes.
    Sqs,
}

/// AWS's throttling error in each protocol, for a `throttling` fault and an empty
/// `[rate_limits]` bucket alike. Every code is one the AWS SDKs classify as throttling.
fn throttling(protocol: Protocol) -> AwsError {
    match protocol {
        Protocol::Query => AwsError::new(400, "Throttling", "Rate exceeded"),
        Protocol::Json => AwsError::new(
            400,
            "TooManyRequestsException",
            "You have sent too many requests in too short a period of time.",
        ),
        Protocol::Sqs => AwsError::new(400, "RequestThrottled", "Rate exceeded"),
    }
}

/// Query-protocol parameters.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn parse(raw: &[u8]) -> Params {
        Params(form_urlencoded::parse(raw).into_owned().collect())
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// One scenario's organization: its world (accounts, sessions it issued, faults, call counts),
/// its latency, its `[rate_limits]` buckets and its `[events]` queue.
pub(crate) struct Org {
    pub(crate) world: Mutex<World>,
    latency: LatencySpec,
    /// `[rate_limits]`' buckets (replaced by the control API).
    pub(crate) rate_limits: Mutex<RateLimiter>,
    /// The `[events]` queue, if the scenario has one.
    pub(crate) queue: Option<Mutex<Queue>>,
    /// Wakes long polls when a message is sent, or when the simulator stops.
    pub(crate) queue_changed: Notify,
}

/// The simulated world: one organization per scenario, on one AWS endpoint and one control API.
pub(crate) struct Simulator {
    /// In the order the scenarios were given; the first one's caller takes any key no scenario
    /// lists.
    pub(crate) orgs: Vec<Org>,
    /// Every account (of every organization) -> its organization's index in `orgs`.
    by_account: HashMap<String, usize>,
    /// Every `caller_access_key_ids` entry -> its scenario's index in `orgs`.
    by_key: HashMap<String, usize>,
    requests: AtomicU64,
    stopping: AtomicBool,
    /// `http://ADDR` of the AWS endpoint, once bound: the queue URL's base.
    endpoint: OnceLock<String>,
}

impl Org {
    fn new(scenario: &Scenario, index: usize) -> Org {
        let mut world = World::new(scenario);
        if index > 0 {
            // Session keys are drawn from the world's generator: another seed for every
            // organization after the first, so that two scenarios with the same seed do not
            // issue the same keys (the first keeps today's draws).
            world.rng = rng::Rng::new(rng::fnv1a(&scenario.organization.id) ^ (index as u64) ^ 0x5EED);
        }
        Org {
            world: Mutex::new(world),
            latency: scenario.latency.clone(),
            rate_limits: Mutex::new(RateLimiter::new(&scenario.rate_limits, tokio::time::Instant::now())),
            queue: scenario
                .events
                .as_ref()
                .map(|e| Mutex::new(Queue::new(e, &scenario.organization.management_account_id))),
            queue_changed: Notify::new(),
        }
    }

    pub(crate) fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().expect("simulator state poisoned")
    }

    /// Put the events of `changes` in the queue (visible after its delivery delay) and return
    /// their CloudTrail `eventID`s; none without a queue.
    pub(crate) fn publish(&self, actor: &Actor, changes: &[RootChange], at: SystemTime) -> Vec<String> {
        let Some(queue) = &self.queue else {
            return Vec::new();
        };
        let ids = {
            let mut q = queue.lock().expect("queue state poisoned");
            let delay = q.delivery_delay;
            changes
                .iter()
                .map(|change| {
                    let event = events::event(change, actor, at, q.rng());
                    let id = event["detail"]["eventID"].as_str().unwrap_or_default().to_string();
                    q.send(event.to_string(), delay);
                    id
                })
                .collect()
        };
        self.queue_changed.notify_waiters();
        ids
    }

    /// Put a raw message in the queue (no delivery delay); its message id, or `None` without a
    /// queue.
    pub(crate) fn send_raw(&self, body: String) -> Option<String> {
        let id = self
            .queue
            .as_ref()?
            .lock()
            .expect("queue state poisoned")
            .send(body, Duration::ZERO);
        self.queue_changed.notify_waiters();
        Some(id)
    }

    pub(crate) fn queue_counts(&self) -> Option<QueueCounts> {
        let q = self.queue.as_ref()?.lock().expect("queue state poisoned");
        Some(q.counts(std::time::Instant::now()))
    }

    /// Whether the operation's `[rate_limits]` bucket (the caller's account's, for a limit
    /// with `scope = "account"`) has a token for a call arriving now; takes it.
    fn admit(&self, operation: &str, principal: &Principal) -> bool {
        let mut limits = self.rate_limits.lock().expect("rate limits poisoned");
        limits.is_empty() || limits.admit(operation, principal.acting_account(), tokio::time::Instant::now())
    }

    /// Count a throttling answer to `operation` and make it.
    fn throttled(&self, operation: &str, protocol: Protocol) -> AwsError {
        self.world().count_throttled(operation);
        throttling(protocol)
    }

    /// Count the call, then apply the scenario's latency, any injected fault and the rate limit.
    /// `account_id` is the account the call is about (AssumeRoot's target, a root session's
    /// account). Called on the organization of the caller's credentials: the scenario that
    /// describes an organization describes the calls made from it.
    ///
    /// A delay stands for the time the request took to reach AWS: a root session that expired
    /// meanwhile is refused with `ExpiredToken`, as one used after its expiry is on arrival, and
    /// the call takes its `[rate_limits]` token then, when it reaches AWS (so a throttled answer
    /// costs the same latency as any other). A call answered by a fault other than `slow` takes
    /// no token.
    pub(crate) async fn gate(
        &self,
        operation: &str,
        principal: &Principal,
        account_id: Option<&str>,
        protocol: Protocol,
    ) -> Result<(), AwsError> {
        let fault = {
            let mut world = self.world();
            world.count_call(operation);
            world.fault_for(operation, account_id)
        };
        let mut delay = self.latency.delay_ms(operation);
        if let Some((FaultKind::Slow, ms)) = fault {
            delay += ms;
        }
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            if let Some(expires) = principal.expires()
                && iam::expired(expires)
            {
                return Err(expired_token());
            }
        }
        match (fault, protocol) {
            (Some((FaultKind::NotAws, _)), _) => Err(AwsError::not_aws()),
            (Some((FaultKind::AccessDenied, _)), Protocol::Query) => Err(AwsError::new(
                403,
                "AccessDenied",
                format!("User is not authorized to perform: {operation} (injected fault)"),
            )),
            (Some((FaultKind::AccessDenied, _)), Protocol::Json) => Err(AwsError::new(
                400,
                "AccessDeniedException",
                format!("You don't have permissions to access this resource: {operation} (injected fault)"),
            )),
            (Some((FaultKind::Throttling, _)), _) => Err(self.throttled(operation, protocol)),
            (Some((FaultKind::ServerError, _)), Protocol::Query) => Err(AwsError::new(
                503,
                "ServiceUnavailable",
                "Service is unable to handle request.",
            )),
            (Some((FaultKind::ServerError, _)), Protocol::Json) => Err(AwsError::new(
                500,
                "ServiceException",
                "AWS Organizations can't complete your request because of an internal service error.",
            )),
            (Some((FaultKind::AccessDenied, _)), Protocol::Sqs) => Err(AwsError::new(
                403,
                "AccessDenied",
                format!("User is not authorized to perform: sqs:{operation} (injected fault)"),
            )),
            (Some((FaultKind::ServerError, _)), Protocol::Sqs) => Err(AwsError::new(
                500,
                "InternalFailure",
                "The request processing has failed because of an unknown error, exception or failure.",
            )),
            (Some((FaultKind::Slow, _)) | None, _) => {
                if self.admit(operation, principal) {
                    Ok(())
                } else {
                    Err(self.throttled(operation, protocol))
                }
            }
        }
    }
}

impl Simulator {
    /// The organizations of `scenarios`, which must not share an account id, an organization id
    /// or a caller access key.
    pub(crate) fn new(scenarios: &[Scenario]) -> Result<Simulator, ScenarioError> {
        let orgs: Vec<Org> = scenarios.iter().enumerate().map(|(i, s)| Org::new(s, i)).collect();
        let mut by_account: HashMap<String, usize> = HashMap::new();
        let mut by_org_id: HashMap<&str, usize> = HashMap::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        let conflict = |first: usize, second: usize, message: String| ScenarioError::Conflict {
            first: scenarios[first].origin.clone(),
            second: scenarios[second].origin.clone(),
            message,
        };
        for (i, (org, scenario)) in orgs.iter().zip(scenarios).enumerate() {
            let org_id = scenario.organization.id.as_str();
            if let Some(&first) = by_org_id.get(org_id) {
                return Err(conflict(
                    first,
                    i,
                    format!("organization id {org_id} is in both; organization ids are unique"),
                ));
            }
            by_org_id.insert(org_id, i);
            for account in &org.world().accounts {
                if let Some(&first) = by_account.get(&account.id) {
                    return Err(conflict(
                        first,
                        i,
                        format!(
                            "account id {} is in both; account ids are unique across organizations",
                            account.id
                        ),
                    ));
                }
                by_account.insert(account.id.clone(), i);
            }
            for key in scenario.organization.caller_access_key_ids.iter().flatten() {
                // A key listed twice in one scenario is still that scenario's.
                if let Some(&first) = by_key.get(key).filter(|&&first| first != i) {
                    return Err(conflict(
                        first,
                        i,
                        format!(
                            "caller access key {key} is in both caller_access_key_ids; a key belongs to one organization"
                        ),
                    ));
                }
                by_key.insert(key.clone(), i);
            }
        }
        Ok(Simulator {
            orgs,
            by_account,
            by_key,
            requests: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            endpoint: OnceLock::new(),
        })
    }

    /// The organization an account belongs to, if any.
    pub(crate) fn org_of_account(&self, account_id: &str) -> Option<&Org> {
        self.by_account.get(account_id).map(|&i| &self.orgs[i])
    }

    /// The organization the credentials act in: the one of their account.
    pub(crate) fn org_for(&self, principal: &Principal) -> &Org {
        // Every caller account and every session's account is an account of the world.
        self.org_of_account(principal.acting_account()).unwrap_or(&self.orgs[0])
    }

    /// The organization of a control API request: `organization_id` when given, else the first
    /// scenario's.
    pub(crate) fn org_by_id(&self, organization_id: Option<&str>) -> Result<&Org, String> {
        let Some(id) = organization_id else {
            return Ok(&self.orgs[0]);
        };
        self.orgs
            .iter()
            .find(|o| o.world().organization_id == id)
            .ok_or_else(|| {
                let ids: Vec<String> = self.orgs.iter().map(|o| o.world().organization_id.clone()).collect();
                let shown: String = id.chars().take(40).collect();
                format!(
                    "organization_id {shown:?} is not a simulated organization; allowed: {}",
                    ids.join(", ")
                )
            })
    }

    /// `ENDPOINT/ACCOUNT/NAME`.
    pub(crate) fn queue_url_of(&self, q: &Queue) -> String {
        let endpoint = self.endpoint.get().map(String::as_str).unwrap_or("http://127.0.0.1");
        format!("{endpoint}/{}/{}", q.owner, q.name)
    }

    /// The URL of an organization's queue, if it has one.
    pub(crate) fn org_queue_url(&self, org: &Org) -> Option<String> {
        let q = org.queue.as_ref()?.lock().expect("queue state poisoned");
        Some(self.queue_url_of(&q))
    }

    /// The first queue's URL (in scenario order).
    pub(crate) fn queue_url(&self) -> Option<String> {
        self.orgs.iter().find_map(|o| self.org_queue_url(o))
    }

    /// Every queue's URL, in scenario order.
    pub(crate) fn queue_urls(&self) -> Vec<String> {
        self.orgs.iter().filter_map(|o| self.org_queue_url(o)).collect()
    }

    /// The organization whose queue has the path `ACCOUNT/NAME`.
    pub(crate) fn org_of_queue_path(&self, path: &str) -> Option<&Org> {
        self.orgs.iter().find(|o| {
            o.queue.as_ref().is_some_and(|q| {
                let q = q.lock().expect("queue state poisoned");
                path == format!("{}/{}", q.owner, q.name)
            })
        })
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for org in &self.orgs {
            org.queue_changed.notify_waiters();
        }
    }

    fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("5e1a0000-0000-4000-8000-{n:012x}")
    }

    /// Who signed the request. `service` is the one the operation belongs to.
    fn authenticate(&self, headers: &HeaderMap, service: &str) -> Result<Principal, AwsError> {
        let Some(auth) = header_str(headers, "authorization") else {
            return Err(AwsError::new(
                403,
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            ));
        };
        let sig = parse_authorization(auth).map_err(|m| AwsError::new(400, "IncompleteSignature", m))?;
        if sig.service != service {
            return Err(AwsError::new(
                403,
                "SignatureDoesNotMatch",
                format!("Credential should be scoped to correct service: '{service}'."),
            ));
        }
        // A session the simulator issued lives in the world of its account's organization.
        for org in &self.orgs {
            let world = org.world();
            let Some(session) = world.sessions.get(&sig.access_key_id) else {
                continue;
            };
            if header_str(headers, "x-amz-security-token") != Some(session.token.as_str()) {
                return Err(AwsError::new(
                    403,
                    "InvalidClientTokenId",
                    "The security token included in the request is invalid.",
                ));
            }
            if iam::expired(session.expires) {
                return Err(expired_token());
            }
            let account_id = session.account_id.clone();
            let expires = session.expires;
            return Ok(match &session.kind {
                SessionKind::Root { task_policy } => Principal::Root {
                    account_id,
                    task_policy: task_policy.clone(),
                    expires,
                },
                SessionKind::Role {
                    role_name,
                    role_id,
                    session_name,
                    organization_access,
                } => Principal::Role {
                    account_id,
                    role_name: role_name.clone(),
                    role_id: role_id.clone(),
                    session_name: session_name.clone(),
                    organization_access: *organization_access,
                    expires,
                },
            });
        }
        // A key a scenario's caller_access_key_ids lists is that organization's caller; any
        // other key is the first scenario's (refused when that one lists its keys).
        let world = match self.by_key.get(&sig.access_key_id) {
            Some(&i) => self.orgs[i].world(),
            None => {
                let world = self.orgs[0].world();
                if world.caller_access_key_ids.is_some() {
                    return Err(AwsError::new(
                        403,
                        "InvalidClientTokenId",
                        "The security token included in the request is invalid.",
                    ));
                }
                world
            }
        };
        Ok(Principal::Caller {
            account_id: world.caller_account_id.clone(),
        })
    }
}

/// The AWS endpoint: every request goes through one handler that tells the protocol apart.
fn aws_router(sim: Arc<Simulator>) -> Router {
    Router::new().fallback(handle_aws).with_state(sim)
}

async fn handle_aws(
    State(sim): State<Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = sim.request_id();
    if let Some(operation) = header_str(&headers, "x-amz-target").and_then(|t| t.strip_prefix(sqs::TARGET_PREFIX)) {
        return match sim.authenticate(&headers, "sqs") {
            Ok(p) => sqs::run(&sim, p, operation, &body)
                .await
                .map_or_else(|e| e.sqs_response(&request_id), |v| json10_ok(v, &request_id)),
            Err(e) => e.sqs_response(&request_id),
        };
    }
    if let Some(target) = header_str(&headers, "x-amz-target") {
        let Some(operation) = target.strip_prefix(organizations::TARGET_PREFIX) else {
            return AwsError::new(400, "UnknownOperationException", format!("unknown target {target:?}"))
                .json_response(&request_id);
        };
        return match sim.authenticate(&headers, "organizations") {
            Ok(p) => organizations::run(&sim, p, operation, &body)
                .await
                .map_or_else(|e| e.json_response(&request_id), |v| json_ok(v, &request_id)),
            Err(e) => e.json_response(&request_id),
        };
    }
    let params = match method {
        Method::POST => Params::parse(&body),
        Method::GET => Params::parse(uri.query().unwrap_or("").as_bytes()),
        _ => {
            return AwsError::new(405, "InvalidAction", "only GET and POST are supported")
                .query_response(sts::NAMESPACE, &request_id);
        }
    };
    // The credential scope says which Query service the request is for.
    let service = header_str(&headers, "authorization")
        .and_then(|a| parse_authorization(a).ok())
        .map(|s| s.service)
        .unwrap_or_else(|| "sts".into());
    let namespace = if service == "iam" {
        iam::NAMESPACE
    } else {
        sts::NAMESPACE
    };
    let Some(action) = params.get("Action").map(str::to_string) else {
        return AwsError::new(400, "MissingAction", "Missing Action").query_response(namespace, &request_id);
    };
    let principal = match sim.authenticate(&headers, &service) {
        Ok(p) => p,
        Err(e) => return e.query_response(namespace, &request_id),
    };
    let answer = match service.as_str() {
        "sts" => sts::run(&sim, principal, &action, &params).await,
        "iam" => iam::run(&sim, principal, &action, &params).await,
        other => Err(AwsError::new(
            400,
            "InvalidAction",
            format!("service {other:?} is not simulated; simulated: organizations, sts, iam"),
        )),
    };
    answer.map_or_else(
        |e| e.query_response(namespace, &request_id),
        |inner| query_ok(&action, namespace, &inner, &request_id),
    )
}

/// A simulator serving on loopback inside this process, as [`start`] returns it. The servers
/// run until the `shutdown` future given to [`start`] resolves; dropping this value does not stop
/// them.
pub struct RunningSimulator {
    aws_addr: SocketAddr,
    control_addr: SocketAddr,
    simulator: Arc<Simulator>,
}

impl RunningSimulator {
    /// The AWS endpoint (Organizations, STS, IAM), e.g. `http://127.0.0.1:41234`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.aws_addr)
    }

    /// The control API, e.g. `http://127.0.0.1:41235`.
    pub fn control_url(&self) -> String {
        format!("http://{}", self.control_addr)
    }

    /// Calls answered so far for one operation (e.g. `"AssumeRoot"`), faults included, in every
    /// organization.
    pub fn calls(&self, operation: &str) -> u64 {
        self.all_calls().get(operation).copied().unwrap_or(0)
    }

    /// Calls answered so far, by operation, in every organization (what the control API's
    /// `GET /_simulator/calls` returns).
    pub fn all_calls(&self) -> BTreeMap<String, u64> {
        self.simulator.all_calls()
    }

    /// Calls of one operation answered with AWS's throttling error so far, by an empty
    /// `[rate_limits]` bucket or a `throttling` fault (they are counted in [`calls`] too).
    ///
    /// [`calls`]: RunningSimulator::calls
    pub fn throttled(&self, operation: &str) -> u64 {
        self.all_throttled().get(operation).copied().unwrap_or(0)
    }

    /// Throttling answers so far, by operation (what the control API's
    /// `GET /_simulator/calls/throttled` returns); operations never throttled are absent.
    pub fn all_throttled(&self) -> BTreeMap<String, u64> {
        self.simulator.all_throttled()
    }

    /// The latest IAM credential report of an account (of any organization), if one was ever
    /// generated (`None` also for an account no organization has).
    pub fn credential_report(&self, account_id: &str) -> Option<CredentialReportInfo> {
        let world = self.simulator.org_of_account(account_id)?.world();
        let account = world.account(account_id)?;
        let report = account.report.as_ref()?;
        Some(CredentialReportInfo {
            generated: report.generated,
            complete: SystemTime::now() >= report.ready,
            generations: account.report_generations,
            csv: report.csv.clone(),
        })
    }

    /// The `[events]` queue's URL, `http://127.0.0.1:PORT/MANAGEMENT_ACCOUNT/NAME`; `None` when
    /// no scenario has `[events]`. With several scenarios, the first one's that has a queue
    /// (see [`queue_urls`](RunningSimulator::queue_urls)).
    pub fn queue_url(&self) -> Option<String> {
        self.simulator.queue_url()
    }

    /// Every `[events]` queue's URL, in scenario order (one per scenario with `[events]`).
    pub fn queue_urls(&self) -> Vec<String> {
        self.simulator.queue_urls()
    }

    /// The counts of the queue [`queue_url`](RunningSimulator::queue_url) names (what
    /// `GET /_simulator/queue` shows); `None` without one.
    pub fn queue_counts(&self) -> Option<QueueCounts> {
        self.simulator.orgs.iter().find_map(Org::queue_counts)
    }

    /// The organization ids, in scenario order.
    pub fn organization_ids(&self) -> Vec<String> {
        self.simulator
            .orgs
            .iter()
            .map(|o| o.world().organization_id.clone())
            .collect()
    }
}

impl Simulator {
    /// Calls answered so far, by operation, summed over the organizations.
    pub(crate) fn all_calls(&self) -> BTreeMap<String, u64> {
        self.sum(|w| &w.calls)
    }

    /// Throttling answers so far, by operation, summed over the organizations.
    pub(crate) fn all_throttled(&self) -> BTreeMap<String, u64> {
        self.sum(|w| &w.throttled)
    }

    fn sum(&self, counts: impl Fn(&World) -> &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        let mut total = BTreeMap::new();
        for org in &self.orgs {
            for (operation, n) in counts(&org.world()) {
                *total.entry(operation.clone()).or_insert(0) += n;
            }
        }
        total
    }
}

/// An account's latest IAM credential report, as [`RunningSimulator::credential_report`] shows
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialReportInfo {
    /// When it was generated: GetCredentialReport's `GeneratedTime`, and the moment the root
    /// user's state was read.
    pub generated: SystemTime,
    /// Whether GetCredentialReport returns it (else `ReportInProgress`).
    pub complete: bool,
    /// How many reports were generated for the account so far (GenerateCredentialReport
    /// answering `STARTED`).
    pub generations: u64,
    /// The report, decoded.
    pub csv: String,
}

/// Bind both listeners and serve the scenario on the current runtime until `shutdown`
/// resolves.
pub async fn start(
    scenario: &Scenario,
    listen: SocketAddr,
    control_listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<RunningSimulator> {
    // One scenario cannot clash with another; should it ever, the error says so.
    let simulator = Simulator::new(std::slice::from_ref(scenario))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    bind_and_serve(simulator, listen, control_listen, shutdown).await
}

/// Serve several organizations in one world, one per scenario, on the same two addresses, until
/// `shutdown` resolves. A caller access key belongs to the organization whose scenario's
/// `caller_access_key_ids` lists it, any other key to the first scenario's; a session acts in its
/// account's organization; `sts:AssumeRole` reaches a role of another organization that trusts
/// the caller's account. The scenarios must not share an account id, an organization id or a
/// caller access key ([`ServeError::Scenario`] with [`ScenarioError::Conflict`]); one scenario
/// is served exactly as by [`start`].
pub async fn start_many(
    scenarios: &[Scenario],
    listen: SocketAddr,
    control_listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunningSimulator, ServeError> {
    if scenarios.is_empty() {
        return Err(ServeError::NoScenario);
    }
    let simulator = Simulator::new(scenarios)?;
    bind_and_serve(simulator, listen, control_listen, shutdown)
        .await
        .map_err(|error| ServeError::Bind {
            listen,
            control_listen,
            error,
        })
}

async fn bind_and_serve(
    simulator: Simulator,
    listen: SocketAddr,
    control_listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<RunningSimulator> {
    let simulator = Arc::new(simulator);
    let aws = TcpListener::bind(listen).await?;
    let control = TcpListener::bind(control_listen).await?;
    let running = RunningSimulator {
        aws_addr: aws.local_addr()?,
        control_addr: control.local_addr()?,
        simulator: simulator.clone(),
    };
    let _ = simulator.endpoint.set(running.endpoint_url());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopping = simulator.clone();
    tokio::spawn(async move {
        shutdown.await;
        // Long polls answer now (empty), so that the graceful stop does not wait for them.
        stopping.stop();
        let _ = tx.send(true);
    });
    let mut rx2 = rx.clone();
    let mut rx1 = rx;
    let aws_app = aws_router(simulator.clone());
    let control_app = control::router(simulator);
    tokio::spawn(async move {
        let _ = axum::serve(aws, aws_app)
            .with_graceful_shutdown(async move {
                let _ = rx1.wait_for(|v| *v).await;
            })
            .await;
    });
    tokio::spawn(async move {
        let _ = axum::serve(control, control_app)
            .with_graceful_shutdown(async move {
                let _ = rx2.wait_for(|v| *v).await;
            })
            .await;
    });
    Ok(running)
}

/// Why [`serve`] failed. Each message is one complete line (no error source chain), so `{e}`
/// and `{e:#}` print the same.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The scenario file cannot be read or is not a valid scenario.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// An address cannot be bound.
    #[error("cannot bind the simulator's addresses ({listen}, control {control_listen}): {error}")]
    Bind {
        listen: SocketAddr,
        control_listen: SocketAddr,
        error: std::io::Error,
    },
    /// The addresses cannot be written to standard output.
    #[error("cannot print the simulator's addresses on stdout: {0}")]
    Stdout(std::io::Error),
    /// [`start_many`] or [`serve_many`] was given no scenario.
    #[error("no scenario to serve; give at least one")]
    NoScenario,
}

/// Load the scenario file, serve it on the current runtime, print the two addresses on stdout
/// (`simulator listening on http://ADDR`, then `simulator control listening on http://ADDR`,
/// then, only when the scenario has `[events]`, `simulator queue url http://ADDR/ACCOUNT/NAME`)
/// and serve until `shutdown` resolves.
pub async fn serve(
    scenario_path: &Path,
    listen: SocketAddr,
    control_listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_many(&[scenario_path], listen, control_listen, shutdown).await
}

/// [`serve`] for several scenario files in one world ([`start_many`]): one `simulator queue url`
/// line per scenario with `[events]`, in the order given.
pub async fn serve_many(
    scenario_paths: &[impl AsRef<Path>],
    listen: SocketAddr,
    control_listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let scenarios = scenario_paths
        .iter()
        .map(|p| Scenario::load(p.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = start_many(&scenarios, listen, control_listen, async {
        let _ = stop_rx.await;
    })
    .await?;
    let printed = {
        let mut out = std::io::stdout().lock();
        writeln!(out, "simulator listening on {}", running.endpoint_url())
            .and_then(|()| writeln!(out, "simulator control listening on {}", running.control_url()))
            .and_then(|()| {
                running
                    .queue_urls()
                    .iter()
                    .try_for_each(|url| writeln!(out, "simulator queue url {url}"))
            })
            .and_then(|()| out.flush())
    };
    if let Err(e) = printed {
        let _ = stop_tx.send(());
        return Err(ServeError::Stdout(e));
    }
    shutdown.await;
    let _ = stop_tx.send(());
    Ok(())
}
