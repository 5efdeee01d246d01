//! The simulator's control API, on its own address: change an account's root user or how its
//! root session behaves while the exporter runs, inject faults, set rate limits, and read call
//! counts. The endpoints are listed in the crate documentation ("Control API") and the README.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State, rejection::JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::events::{Actor, RootSession};
use super::ratelimit::RateLimiter;
use super::scenario::{
    AssumeRootMode, KeyStatus, MfaKind, RoleSpec, RootSpec, check_account_id, check_features, check_roles, check_tags,
    parse_faults, parse_rate_limits,
};
use super::state::{ActiveFault, RootAction, RootChange, World};
use super::wire::iso8601;
use super::{CALLER_ROLE, CALLER_SESSION, Simulator};

pub(crate) fn router(sim: Arc<Simulator>) -> Router {
    Router::new()
        .route("/_simulator/accounts/{account_id}/root", put(put_root))
        .route("/_simulator/accounts/{account_id}/root_actions", post(post_root_action))
        .route("/_simulator/queue", get(get_queue))
        .route("/_simulator/queue/messages", post(post_queue_message))
        .route("/_simulator/accounts/{account_id}/assume_root", put(put_assume_root))
        .route("/_simulator/accounts/{account_id}/tags", put(put_tags))
        .route("/_simulator/accounts/{account_id}/roles", put(put_roles))
        .route(
            "/_simulator/accounts/{account_id}/credential_report",
            get(get_credential_report).put(put_credential_report),
        )
        .route("/_simulator/features", put(put_features))
        .route("/_simulator/faults", put(put_faults))
        .route("/_simulator/rate_limits", put(put_rate_limits))
        .route("/_simulator/calls", get(get_calls))
        .route("/_simulator/calls/throttled", get(get_throttled))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such control endpoint; see the README's simulator section".into(),
            )
        })
        .with_state(sim)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn bad_body(rejection: JsonRejection, shape: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        format!("{}; expected {shape}", rejection.body_text()),
    )
}

fn unknown_account(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("account {id} is not in the simulated organization"),
    )
}

/// What is wrong with the account of a `/_simulator/accounts/{account_id}/...` path: 400 when it
/// is not an account id, 404 when the organization has no such account.
fn account_problem(world: &World, id: &str) -> Option<Response> {
    if let Err(m) = check_account_id("account id in the path", id) {
        return Some(error(StatusCode::BAD_REQUEST, m));
    }
    world.account(id).is_none().then(|| unknown_account(id))
}

/// JSON as the TOML value the scenario's readers take, so that a body is read by the same code
/// as the scenario file. A `null` member counts as absent.
fn json_to_toml(v: serde_json::Value) -> Result<toml::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => return Err("null is not a value here".into()),
        J::Bool(b) => toml::Value::Boolean(b),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(f)) if n.is_f64() => toml::Value::Float(f),
            _ => return Err(format!("number {n} is out of range")),
        },
        J::String(s) => toml::Value::String(s),
        J::Array(list) => toml::Value::Array(list.into_iter().map(json_to_toml).collect::<Result<_, _>>()?),
        J::Object(map) => toml::Value::Table(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| Ok((k, json_to_toml(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

const ROOT_SHAPE: &str = r#"{"mfa":["virtual"|"hardware"|"passkey"|"sms"],"password":true,"access_keys":["Active"|"Inactive"],"signing_certificates":[]}"#;

async fn put_root(
    State(sim): State<Arc<Simulator>>,
    Path(account_id): Path<String>,
    body: Result<Json<RootSpec>, JsonRejection>,
) -> Response {
    let mut world = sim.world.lock().expect("simulator state poisoned");
    if let Some(r) = account_problem(&world, &account_id) {
        return r;
    }
    let spec = match body {
        Ok(Json(spec)) => spec,
        Err(r) => return bad_body(r, ROOT_SHAPE),
    };
    let actor = actor(&world, &account_id, RootSession::Console);
    let now = std::time::SystemTime::now();
    let Some(changes) = world.set_root(&account_id, &spec, now) else {
        return unknown_account(&account_id);
    };
    drop(world);
    let queued = sim.publish(&actor, &changes, now);
    let events: Vec<&str> = changes.iter().map(RootChange::event_name).collect();
    Json(json!({
        "account_id": account_id,
        "updated": "root",
        "events": events,
        "queued": queued.len(),
    }))
    .into_response()
}

/// The root user of `account_id` acting in `session`, as CloudTrail records it; the account
/// must exist.
fn actor(world: &World, account_id: &str, session: RootSession) -> Actor {
    let caller = &world.caller_account_id;
    Actor {
        account_id: account_id.to_string(),
        session,
        mfa_authenticated: world.account(account_id).is_some_and(|a| !a.root.mfa.is_empty()),
        issuer_account_id: caller.clone(),
        issuer_arn: format!("arn:aws:sts::{caller}:assumed-role/{CALLER_ROLE}/{CALLER_SESSION}"),
    }
}

/// The actions `POST .../root_actions` performs.
const ROOT_ACTIONS: [&str; 13] = [
    "CreateAccessKey",
    "DeleteAccessKey",
    "UpdateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "DeleteLoginProfile",
    "EnableMFADevice",
    "DeactivateMFADevice",
    "DeleteVirtualMFADevice",
    "UploadSigningCertificate",
    "UpdateSigningCertificate",
    "DeleteSigningCertificate",
    "ConsoleLogin",
];

/// What an AssumeRoot session may do to root's credentials: the task policies
/// `IAMDeleteRootUserCredentials` and `IAMCreateRootUserPassword`.
const ASSUMED_ROOT_ACTIONS: [&str; 5] = [
    "DeleteAccessKey",
    "DeactivateMFADevice",
    "DeleteLoginProfile",
    "DeleteSigningCertificate",
    "CreateLoginProfile",
];

const ROOT_ACTION_SHAPE: &str = r#"{"action":"CreateAccessKey"|"DeleteAccessKey"|...,"access_key_id":"AKIA...","certificate_id":"...","status":"Active"|"Inactive","mfa":"virtual"|"hardware"|"passkey"|"sms","session":"console"|"assumed_root"}"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RootActionBody {
    action: String,
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    certificate_id: Option<String>,
    #[serde(default)]
    status: Option<KeyStatus>,
    #[serde(default)]
    mfa: Option<MfaKind>,
    #[serde(default)]
    session: Option<SessionBody>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum SessionBody {
    Console,
    AssumedRoot,
}

/// Perform one IAM call (or a console sign-in) on an account's root user and queue its event.
async fn post_root_action(
    State(sim): State<Arc<Simulator>>,
    Path(account_id): Path<String>,
    body: Result<Json<RootActionBody>, JsonRejection>,
) -> Response {
    let mut world = sim.world.lock().expect("simulator state poisoned");
    if let Some(r) = account_problem(&world, &account_id) {
        return r;
    }
    let body = match body {
        Ok(Json(b)) => b,
        Err(r) => return bad_body(r, ROOT_ACTION_SHAPE),
    };
    if !ROOT_ACTIONS.contains(&body.action.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "action {:?} is not one the simulator performs; allowed: {}",
                body.action,
                ROOT_ACTIONS.join(", ")
            ),
        );
    }
    let session = match body.session.unwrap_or(SessionBody::Console) {
        SessionBody::Console => RootSession::Console,
        SessionBody::AssumedRoot => {
            if !ASSUMED_ROOT_ACTIONS.contains(&body.action.as_str()) {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "an AssumeRoot session cannot perform {}; its task policies allow: {}",
                        body.action,
                        ASSUMED_ROOT_ACTIONS.join(", ")
                    ),
                );
            }
            RootSession::AssumedRoot
        }
    };
    if let Some(s) = body.status
        && s == KeyStatus::Expired
    {
        return error(
            StatusCode::BAD_REQUEST,
            "status \"Expired\" is not one a call can set; allowed: \"Active\", \"Inactive\"".into(),
        );
    }
    let actor = actor(&world, &account_id, session);
    let now = std::time::SystemTime::now();
    let action = RootAction {
        name: body.action.clone(),
        access_key_id: body.access_key_id,
        certificate_id: body.certificate_id,
        status: body.status,
        mfa: body.mfa,
    };
    let change = match world.root_action(&account_id, &action, now) {
        Ok(c) => c,
        Err((status, m)) => {
            return error(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), m);
        }
    };
    drop(world);
    let event_id = sim.publish(&actor, std::slice::from_ref(&change), now).pop();
    let mut answer = change.summary();
    answer["account_id"] = account_id.into();
    answer["action"] = body.action.into();
    answer["queued"] = event_id.is_some().into();
    answer["event_id"] = event_id.into();
    Json(answer).into_response()
}

fn no_queue() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "the scenario has no [events] queue (add [events] queue_name = \"...\")".into(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    body: String,
}

/// Put a raw message in the queue, as if any sender had sent it.
async fn post_queue_message(
    State(sim): State<Arc<Simulator>>,
    body: Result<Json<MessageBody>, JsonRejection>,
) -> Response {
    if sim.queue.is_none() {
        return no_queue();
    }
    let body = match body {
        Ok(Json(b)) => b.body,
        Err(r) => return bad_body(r, r#"{"body":"any string"}"#),
    };
    if let Err(m) = super::queue::check_body(&body) {
        return error(StatusCode::BAD_REQUEST, m);
    }
    match sim.send_raw(body) {
        Some(id) => Json(json!({ "message_id": id, "queue_url": sim.queue_url() })).into_response(),
        None => no_queue(),
    }
}

async fn get_queue(State(sim): State<Arc<Simulator>>) -> Response {
    let (Some(url), Some(c)) = (sim.queue_url(), sim.queue_counts()) else {
        return no_queue();
    };
    Json(json!({
        "queue_url": url,
        "visible": c.visible,
        "in_flight": c.in_flight,
        "delayed": c.delayed,
        "deleted": c.deleted,
        "received_total": c.received_total,
        "sent_total": c.sent_total,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: AssumeRootMode,
}

async fn put_assume_root(
    State(sim): State<Arc<Simulator>>,
    Path(account_id): Path<String>,
    body: Result<Json<ModeBody>, JsonRejection>,
) -> Response {
    let mut world = sim.world.lock().expect("simulator state poisoned");
    if let Some(r) = account_problem(&world, &account_id) {
        return r;
    }
    let mode = match body {
        Ok(Json(b)) => b.mode,
        Err(r) => return bad_body(r, r#"{"mode":"ok"|"access_denied"}"#),
    };
    match world.account_mut(&account_id) {
        Some(a) => {
            a.assume_root = mode;
            Json(json!({ "account_id": account_id, "updated": "assume_root" })).into_response()
        }
        None => unknown_account(&account_id),
    }
}

async fn put_tags(
    State(sim): State<Arc<Simulator>>,
    Path(account_id): Path<String>,
    body: Result<Json<BTreeMap<String, String>>, JsonRejection>,
) -> Response {
    let mut world = sim.world.lock().expect("simulator state poisoned");
    if let Some(r) = account_problem(&world, &account_id) {
        return r;
    }
    let tags = match body {
        Ok(Json(tags)) => tags,
        Err(r) => return bad_body(r, r#"{"owner":"team-a","environment":"prod"}"#),
    };
    if let Err(m) = check_tags("tags", &tags) {
        return error(StatusCode::BAD_REQUEST, m);
    }
    match world.account_mut(&account_id) {
        Some(a) => {
            a.tags = tags;
            Json(json!({ "account_id": account_id, "updated": "tags" })).into_response()
        }
        None => unknown_account(&account_id),
    }
}

async fn put_roles(
    State(sim): State<Arc<Simulator>>,
    Path(account_id): Path<String>,
    body: Result<Json<Vec<RoleSpec>>, JsonRejection>,
) -> Response {
    let mut world = sim.world.lock().expect("simulator state poisoned");
    if let Some(r) = account_problem(&world, &account_id) {
        return r;
    }
    let roles = match body {
        Ok(Json(roles)) => roles,
        Err(r) => {
            return bad_body(
                r,
                r#"["RootAuditRole",{"name":"AuditRole","trusts":["111111111111"],"external_id":"secret-id","max_session_duration":3600}]"#,
            );
        }
    };
    if let Err(m) = check_roles("roles", &roles) {
        return error(StatusCode::BAD_REQUEST, m);
    }
    match world.set_roles(&account_id, &roles) {
        Some(()) => Json(json!({ "account_id": account_id, "updated": "roles" })).into_response(),
        None => unknown_account(&account_id),
    }
}

/// The account's latest credential report: `state` none | in_progress | complete, when it was
/// generated, how many were generated.
async fn get_credential_report(State(sim): State<Arc<Simulator>>, Path(account_id): Path<String>) -> Response {
    let world = sim.world.lock().expect("simulator state poisoned");
    if let Some(r) = account_problem(&world, &account_id) {
        return r;
    }
    let account = world.account(&account_id).expect("checked above");
    let (state, generated) = match &account.report {
        None => ("none", None),
        Some(r) if std::time::SystemTime::now() < r.ready => ("in_progress", Some(iso8601(r.generated))),
        Some(r) => ("complete", Some(iso8601(r.generated))),
    };
    Json(json!({
        "account_id": account_id,
        "state": state,
        "generated": generated,
        "generations": account.report_generations,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    age_seconds: Option<u64>,
    corrupt: Option<String>,
}

/// Make the account's report `age_seconds` old (and complete), as if generated that long ago:
/// to test the four-hour regeneration and `ReportExpired` without waiting; and/or `corrupt` it
/// the way a broken report would be ([`crate::state::ReportCorruption`]) until the next
/// generation.
async fn put_credential_report(
    State(sim): State<Arc<Simulator>>,
    Path(account_id): Path<String>,
    body: Result<Json<ReportBody>, JsonRejection>,
) -> Response {
    const EXAMPLE: &str = r#"{"age_seconds":14400} or {"corrupt":"drop_field"}"#;
    let mut world = sim.world.lock().expect("simulator state poisoned");
    if let Some(r) = account_problem(&world, &account_id) {
        return r;
    }
    let (age, corrupt) = match body {
        Ok(Json(ReportBody {
            age_seconds: None,
            corrupt: None,
        })) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body sets nothing; expected {EXAMPLE}"),
            );
        }
        Ok(Json(b)) => (b.age_seconds, b.corrupt),
        Err(r) => return bad_body(r, EXAMPLE),
    };
    let corruption = match corrupt.as_deref().map(crate::state::ReportCorruption::parse) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let account = world.account_mut(&account_id).expect("checked above");
    let Some(report) = account.report.as_mut() else {
        return error(
            StatusCode::CONFLICT,
            format!("account {account_id} has no credential report to change; generate one first"),
        );
    };
    if let Some(age) = age {
        let Some(generated) = std::time::SystemTime::now().checked_sub(std::time::Duration::from_secs(age)) else {
            return error(StatusCode::BAD_REQUEST, format!("age_seconds = {age} is out of range"));
        };
        report.generated = generated;
        report.ready = generated;
    }
    if let Some(c) = corruption {
        report.csv = c.apply(&report.csv);
    }
    let generated = report.generated;
    Json(json!({ "account_id": account_id, "updated": "credential_report", "generated": iso8601(generated) }))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeaturesBody {
    enabled: Vec<String>,
}

async fn put_features(State(sim): State<Arc<Simulator>>, body: Result<Json<FeaturesBody>, JsonRejection>) -> Response {
    let enabled = match body {
        Ok(Json(b)) => b.enabled,
        Err(r) => return bad_body(r, r#"{"enabled":["RootCredentialsManagement","RootSessions"]}"#),
    };
    if let Err(m) = check_features("enabled", &enabled) {
        return error(StatusCode::BAD_REQUEST, m);
    }
    sim.world.lock().expect("simulator state poisoned").features = enabled;
    Json(json!({ "updated": "features" })).into_response()
}

const FAULTS_SHAPE: &str = r#"[{"operation":"AssumeRoot"|"*",...,"kind":"throttling"|"server_error"|"slow"|"not_aws","rate":1.0,"count":5,"delay_ms":0,"account_id":"222222222222"}] or {"AssumeRoot":{"kind":...},...}"#;

/// Replace the injected faults. The body is read and checked by the scenario file's own reader
/// of `faults` ([`parse_faults`]): the same keys, kinds, operations and ranges, and an
/// `account_id` must be an account of the organization; anything else is 400 and changes
/// nothing.
async fn put_faults(
    State(sim): State<Arc<Simulator>>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Response {
    let value = match body.map(|Json(v)| json_to_toml(v)) {
        Ok(Ok(v)) => v,
        Ok(Err(m)) => return error(StatusCode::BAD_REQUEST, format!("faults: {m}; expected {FAULTS_SHAPE}")),
        Err(r) => return bad_body(r, FAULTS_SHAPE),
    };
    let mut world = sim.world.lock().expect("simulator state poisoned");
    let faults = {
        let world = &*world;
        match parse_faults(value, &|id: &str| world.account(id).is_some()) {
            Ok(f) => f,
            Err(m) => return error(StatusCode::BAD_REQUEST, m),
        }
    };
    world.faults = faults
        .into_iter()
        .map(|f| ActiveFault {
            remaining: f.count,
            spec: f,
        })
        .collect();
    Json(json!({ "updated": "faults" })).into_response()
}

const RATE_LIMITS_SHAPE: &str =
    r#"{"AssumeRoot":{"rate":50,"burst":50},"GetAccountSummary":{"rate":20,"scope":"account"|"global"},...}"#;

/// Replace the rate limits, every bucket full. The body is read and checked by the scenario
/// file's own reader of `[rate_limits]` ([`parse_rate_limits`]); anything it refuses is 400 and
/// changes nothing. `{}` removes every limit.
async fn put_rate_limits(
    State(sim): State<Arc<Simulator>>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Response {
    let value = match body.map(|Json(v)| json_to_toml(v)) {
        Ok(Ok(v)) => v,
        Ok(Err(m)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("rate_limits: {m}; expected {RATE_LIMITS_SHAPE}"),
            );
        }
        Err(r) => return bad_body(r, RATE_LIMITS_SHAPE),
    };
    let limits = match parse_rate_limits(value) {
        Ok(l) => l,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    *sim.rate_limits.lock().expect("rate limits poisoned") = RateLimiter::new(&limits, tokio::time::Instant::now());
    Json(json!({ "updated": "rate_limits", "operations": limits.keys().collect::<Vec<_>>() })).into_response()
}

async fn get_calls(State(sim): State<Arc<Simulator>>) -> Response {
    let world = sim.world.lock().expect("simulator state poisoned");
    Json(json!(world.calls)).into_response()
}

/// Calls answered with the throttling error, by operation (a subset of `GET /_simulator/calls`).
async fn get_throttled(State(sim): State<Arc<Simulator>>) -> Response {
    let world = sim.world.lock().expect("simulator state poisoned");
    Json(json!(world.throttled)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_becomes_the_toml_the_scenario_readers_take() {
        let v = json_to_toml(json!({"a": 1, "b": 0.5, "c": "x", "d": [true], "e": null, "f": {"g": null}})).unwrap();
        assert_eq!(
            v,
            toml::toml! { a = 1
            b = 0.5
            c = "x"
            d = [true]
            f = {} }
            .into()
        );
        assert!(json_to_toml(json!([null])).is_err());
        assert!(json_to_toml(json!(u64::MAX)).unwrap_err().contains("out of range"));
    }
}
