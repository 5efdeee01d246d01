//! The project's AWS test double: a wire-compatible simulation of one AWS Organization, its
//! member accounts and their root users. It speaks Organizations (JSON 1.1) and STS and IAM
//! (Query protocol, XML) on one address, so the real AWS SDK, boto3 or the AWS CLI can talk to
//! it with `AWS_ENDPOINT_URL`; a control API on a second address changes the world at run time.

pub mod control;
mod iam;
mod organizations;
pub mod scenario;
pub mod state;
mod sts;
pub mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use tokio::net::TcpListener;

use scenario::{FaultKind, LatencySpec, Scenario};
use state::World;
use wire::{AwsError, header_str, parse_authorization};

/// Who a request acts as.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Any credentials the simulator did not issue: the exporter's role in the management
    /// account.
    Management,
    /// A root session issued by AssumeRoot.
    Root { account_id: String, task_policy: String },
}

impl Principal {
    pub fn account_id(&self) -> Option<&str> {
        match self {
            Principal::Management => None,
            Principal::Root { account_id, .. } => Some(account_id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Query,
}

/// Query-protocol parameters.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(raw: &[u8]) -> Params {
        Params(form_urlencoded::parse(raw).into_owned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

pub struct Simulator {
    pub world: Mutex<World>,
    latency: LatencySpec,
    requests: AtomicU64,
}

impl Simulator {
    pub fn new(scenario: &Scenario) -> Simulator {
        Simulator {
            world: Mutex::new(World::new(scenario)),
            latency: scenario.latency.clone(),
            requests: AtomicU64::new(0),
        }
    }

    fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("5e1a0000-0000-4000-8000-{n:012x}")
    }

    /// Count the call, then apply the scenario's latency and any injected fault.
    pub async fn gate(&self, operation: &str, account_id: Option<&str>, protocol: Protocol) -> Result<(), AwsError> {
        let fault = {
            let mut world = self.world.lock().expect("simulator state poisoned");
            world.count_call(operation);
            world.fault_for(operation, account_id)
        };
        let mut delay = self
            .latency
            .operations
            .get(operation)
            .copied()
            .unwrap_or(self.latency.default_ms);
        if let Some((FaultKind::Slow, ms)) = fault {
            delay += ms;
        }
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        match (fault, protocol) {
            (Some((FaultKind::Throttling, _)), Protocol::Query) => {
                Err(AwsError::new(400, "Throttling", "Rate exceeded"))
            }
            (Some((FaultKind::Throttling, _)), Protocol::Json) => Err(AwsError::new(
                400,
                "TooManyRequestsException",
                "You have sent too many requests in too short a period of time.",
            )),
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
            _ => Ok(()),
        }
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
        let world = self.world.lock().expect("simulator state poisoned");
        if let Some(session) = world.sessions.get(&sig.access_key_id) {
            if header_str(headers, "x-amz-security-token") != Some(session.token.as_str()) {
                return Err(AwsError::new(
                    403,
                    "InvalidClientTokenId",
                    "The security token included in the request is invalid.",
                ));
            }
            if iam::expired(session.expires) {
                return Err(AwsError::new(
                    403,
                    "ExpiredToken",
                    "The security token included in the request is expired",
                ));
            }
            return Ok(Principal::Root {
                account_id: session.account_id.clone(),
                task_policy: session.task_policy.clone(),
            });
        }
        if let Some(allowed) = &world.caller_access_key_ids
            && !allowed.contains(&sig.access_key_id)
        {
            return Err(AwsError::new(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            ));
        }
        Ok(Principal::Management)
    }
}

/// The AWS endpoint: every request goes through one handler that tells the protocol apart.
pub fn aws_router(sim: std::sync::Arc<Simulator>) -> Router {
    Router::new().fallback(handle_aws).with_state(sim)
}

async fn handle_aws(
    State(sim): State<std::sync::Arc<Simulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = sim.request_id();
    if let Some(target) = header_str(&headers, "x-amz-target") {
        let Some(operation) = target.strip_prefix(organizations::TARGET_PREFIX) else {
            return AwsError::new(400, "UnknownOperationException", format!("unknown target {target:?}"))
                .json_response(&request_id);
        };
        return match sim.authenticate(&headers, "organizations") {
            Ok(p) => organizations::handle(&sim, p, operation, &body, &request_id).await,
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
    match service.as_str() {
        "sts" => sts::handle(&sim, principal, &action, &params, &request_id).await,
        "iam" => iam::handle(&sim, principal, &action, &params, &request_id).await,
        other => AwsError::new(
            400,
            "InvalidAction",
            format!("service {other:?} is not simulated; simulated: organizations, sts, iam"),
        )
        .query_response(namespace, &request_id),
    }
}

/// A simulator serving on loopback inside this process (for `demo` and tests).
pub struct RunningSimulator {
    pub aws_addr: SocketAddr,
    pub control_addr: SocketAddr,
    pub simulator: std::sync::Arc<Simulator>,
}

impl RunningSimulator {
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.aws_addr)
    }

    pub fn control_url(&self) -> String {
        format!("http://{}", self.control_addr)
    }
}

/// Bind both listeners and serve them on the current runtime until `shutdown` resolves.
pub async fn start(
    scenario: &Scenario,
    listen: SocketAddr,
    control_listen: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<RunningSimulator> {
    let simulator = std::sync::Arc::new(Simulator::new(scenario));
    let aws = TcpListener::bind(listen).await?;
    let control = TcpListener::bind(control_listen).await?;
    let running = RunningSimulator {
        aws_addr: aws.local_addr()?,
        control_addr: control.local_addr()?,
        simulator: simulator.clone(),
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
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
