//! The simulator's control API, on its own address: change an account's root user or how its
//! root session behaves while the exporter runs, inject faults, set rate limits, and read call
//! counts. The endpoints are listed in the crate documentation ("Control API") and the README.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State, rejection::JsonRejection, rejection::QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::events::{Actor, RootSession};
use super::ratelimit::RateLimiter;
use super::rng::UPPER_DIGITS;
use super::scenario::{
    AssumeRootMode, KeyStatus, MfaKind, RoleSpec, RootSpec, check_account_id, check_features,
    check_organization_access, check_roles, check_tags, parse_faults, parse_rate_limits,
};
use super::state::{ActiveFault, RootAction, RootChange, SimAccount, World};
use super::wire::iso8601;
use super::{Org, Simulator};

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

/// The organization of the account of a `/_simulator/accounts/{account_id}/...` path (of any
/// simulated organization), or what is wrong with it: 400 when it is not an account id, 404 when
/// no organization has such an account.
fn account_org<'a>(sim: &'a Simulator, id: &str) -> Result<&'a Org, Box<Response>> {
    if let Err(m) = check_account_id("account id in the path", id) {
        return Err(Box::new(error(StatusCode::BAD_REQUEST, m)));
    }
    sim.org_of_account(id).ok_or_else(|| Box::new(unknown_account(id)))
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
    let (org, spec) = match account_request(&sim, &account_id, body, ROOT_SHAPE) {
        Ok(got) => got,
        Err(r) => return *r,
    };
    let mut world = org.world();
    let actor = actor(&world, &account_id, RootSession::Console);
    let now = std::time::SystemTime::now();
    let Some(changes) = world.set_root(&account_id, &spec, now) else {
        return unknown_account(&account_id);
    };
    drop(world);
    let queued = org.publish(&actor, &changes, now);
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
/// must exist. An AssumeRoot session is, unless the body says otherwise, one an operator of the
/// caller account opened ([`OPERATOR_ROLE`]), not the exporter: an operator, not the exporter,
/// deletes root credentials.
fn actor(world: &World, account_id: &str, session: RootSession) -> Actor {
    let caller = &world.caller_account_id;
    Actor {
        account_id: account_id.to_string(),
        session,
        mfa_authenticated: world.account(account_id).is_some_and(|a| !a.root.mfa.is_empty()),
        issuer_account_id: caller.clone(),
        issuer_arn: format!("arn:aws:sts::{caller}:assumed-role/{OPERATOR_ROLE}/{OPERATOR_SESSION}"),
        access_key_id: None,
        hints: true,
    }
}

/// The default issuer of an AssumeRoot session in `root_actions`: a principal of the caller
/// account that is not the exporter's (`arn:aws:sts::CALLER:assumed-role/Admin/operator`).
const OPERATOR_ROLE: &str = "Admin";
const OPERATOR_SESSION: &str = "operator";

/// The actions `POST .../root_actions` performs.
const ROOT_ACTIONS: [&str; 14] = [
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
    "ApiCall",
];

/// What an AssumeRoot session may do to root's credentials: the task policies
/// `IAMDeleteRootUserCredentials` and `IAMCreateRootUserPassword`; and `ApiCall`, any call of
/// the other task policies (e.g. `S3UnlockBucketPolicy`).
const ASSUMED_ROOT_ACTIONS: [&str; 6] = [
    "DeleteAccessKey",
    "DeactivateMFADevice",
    "DeleteLoginProfile",
    "DeleteSigningCertificate",
    "CreateLoginProfile",
    "ApiCall",
];

const ROOT_ACTION_SHAPE: &str = r#"{"action":"CreateAccessKey"|"DeleteAccessKey"|...|"ConsoleLogin"|"ApiCall","access_key_id":"AKIA...","certificate_id":"...","status":"Active"|"Inactive","mfa":"virtual"|"hardware"|"passkey"|"sms","session":"console"|"access_key"|"assumed_root","issued_to":"arn:..."|"self","hints":true} or {"action":"ConsoleLogin","outcome":"Success"|"Failure"} or {"action":"ApiCall","event_source":"s3.amazonaws.com","event_name":"PutBucketPolicy","read_only":false,"session":"console"|"access_key"|"assumed_root","issued_to":"arn:..."|"self","hints":true}"#;

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
    /// `ConsoleLogin`: whether the sign-in succeeds (default) or fails.
    #[serde(default)]
    outcome: Option<Outcome>,
    /// `ApiCall`: the call, as CloudTrail names it.
    #[serde(default)]
    event_source: Option<String>,
    #[serde(default)]
    event_name: Option<String>,
    #[serde(default)]
    read_only: Option<bool>,
    /// `assumed_root`: who opened the session (an ARN), or `"self"`: the latest session the
    /// simulator's AssumeRoot issued for the account.
    #[serde(default)]
    issued_to: Option<String>,
    /// `assumed_root`: whether the event carries `sessionContext.assumedRoot` and `inScopeOf`.
    #[serde(default)]
    hints: Option<bool>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum SessionBody {
    Console,
    AccessKey,
    AssumedRoot,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
}

/// The longest `issued_to` ARN accepted (IAM's limit on an ARN in a policy).
const MAX_ARN_CHARS: usize = 2048;

/// `s3.amazonaws.com`: one label of 1 to 64 lowercase letters, digits and hyphens, then
/// `.amazonaws.com`.
fn check_event_source(value: &str) -> Result<(), String> {
    let name = value.strip_suffix(".amazonaws.com").unwrap_or("");
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        return Ok(());
    }
    Err(format!(
        "event_source {value:?} is not a service's event source; allowed: NAME.amazonaws.com, NAME 1 to 64 lowercase letters, digits and hyphens (e.g. \"s3.amazonaws.com\")"
    ))
}

/// `PutBucketPolicy`: 1 to 128 ASCII letters and digits.
fn check_event_name(value: &str) -> Result<(), String> {
    if (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(());
    }
    Err(format!(
        "event_name {value:?} is not an API action name; allowed: 1 to 128 letters and digits (e.g. \"PutBucketPolicy\")"
    ))
}

/// Who opened an AssumeRoot session, and the session's access key id when known.
#[derive(Debug, PartialEq, Eq)]
struct Issuer {
    account_id: String,
    arn: String,
    access_key_id: Option<String>,
}

/// Who opened an AssumeRoot session, from `issued_to`; `None` is the operator of [`actor`].
fn issuer(world: &World, account_id: &str, issued_to: Option<&str>) -> Result<Option<Issuer>, (StatusCode, String)> {
    match issued_to {
        None => Ok(None),
        Some("self") => match world.latest_root_sessions.get(account_id) {
            Some(s) => Ok(Some(Issuer {
                account_id: s.issuer_account_id.clone(),
                arn: s.issuer_arn.clone(),
                access_key_id: Some(s.access_key_id.clone()),
            })),
            None => Err((
                StatusCode::CONFLICT,
                format!(
                    "issued_to \"self\": the simulator has issued no sts:AssumeRoot session for account {account_id}; call AssumeRoot first"
                ),
            )),
        },
        Some(arn) => {
            if !arn.starts_with("arn:") || arn.chars().count() > MAX_ARN_CHARS {
                let shown: String = arn.chars().take(80).collect();
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!(
                        "issued_to {shown:?} is not an ARN; allowed: \"self\" or an ARN (starting with \"arn:\", at most {MAX_ARN_CHARS} characters)"
                    ),
                ));
            }
            let account = arn
                .split(':')
                .nth(4)
                .filter(|a| check_account_id("", a).is_ok())
                .map(str::to_string)
                .unwrap_or_else(|| world.caller_account_id.clone());
            Ok(Some(Issuer {
                account_id: account,
                arn: arn.to_string(),
                access_key_id: None,
            }))
        }
    }
}

fn bad_request(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// The fields of `body` that `action` (in `session`) does not take: a 400 naming the first.
fn misplaced_field(body: &RootActionBody, session: SessionBody) -> Option<Response> {
    let api_call = body.action == "ApiCall";
    let fields: [(&str, bool, &str); 6] = [
        (
            "outcome",
            body.outcome.is_some() && body.action != "ConsoleLogin",
            "action \"ConsoleLogin\"",
        ),
        (
            "event_source",
            body.event_source.is_some() && !api_call,
            "action \"ApiCall\"",
        ),
        (
            "event_name",
            body.event_name.is_some() && !api_call,
            "action \"ApiCall\"",
        ),
        ("read_only", body.read_only.is_some() && !api_call, "action \"ApiCall\""),
        (
            "issued_to",
            body.issued_to.is_some() && session != SessionBody::AssumedRoot,
            "session \"assumed_root\"",
        ),
        (
            "access_key_id",
            body.access_key_id.is_some() && api_call,
            "the credential actions (ApiCall signs with root's first active key in session \"access_key\")",
        ),
    ];
    fields.iter().find(|(_, wrong, _)| *wrong).map(|(name, _, only)| {
        bad_request(format!(
            "{name} does not apply to action {:?}; it is only for {only}",
            body.action
        ))
    })
}

/// Perform one IAM call, console sign-in or other API call as an account's root user and queue
/// its event.
async fn post_root_action(
    State(sim): State<Arc<Simulator>>,
    Path(account_id): Path<String>,
    body: Result<Json<RootActionBody>, JsonRejection>,
) -> Response {
    let (org, body) = match account_request(&sim, &account_id, body, ROOT_ACTION_SHAPE) {
        Ok(got) => got,
        Err(r) => return *r,
    };
    let mut world = org.world();
    if !ROOT_ACTIONS.contains(&body.action.as_str()) {
        return bad_request(format!(
            "action {:?} is not one the simulator performs; allowed: {}",
            body.action,
            ROOT_ACTIONS.join(", ")
        ));
    }
    let session_body = body.session.unwrap_or(SessionBody::Console);
    if let Some(r) = misplaced_field(&body, session_body) {
        return r;
    }
    let session = match session_body {
        SessionBody::Console => RootSession::Console,
        SessionBody::AccessKey => {
            if body.action != "ApiCall" {
                return bad_request(format!(
                    "session \"access_key\" is only for action \"ApiCall\", not {}; allowed sessions for it: \"console\", \"assumed_root\"",
                    body.action
                ));
            }
            RootSession::AccessKey
        }
        SessionBody::AssumedRoot => {
            if !ASSUMED_ROOT_ACTIONS.contains(&body.action.as_str()) {
                return bad_request(format!(
                    "an AssumeRoot session cannot perform {}; its task policies allow: {}",
                    body.action,
                    ASSUMED_ROOT_ACTIONS.join(", ")
                ));
            }
            RootSession::AssumedRoot
        }
    };
    if let Some(s) = body.status
        && s == KeyStatus::Expired
    {
        return bad_request("status \"Expired\" is not one a call can set; allowed: \"Active\", \"Inactive\"".into());
    }
    let mut actor = actor(&world, &account_id, session);
    actor.hints = body.hints.unwrap_or(true);
    if session == RootSession::AssumedRoot {
        match issuer(&world, &account_id, body.issued_to.as_deref()) {
            Ok(None) => {}
            Ok(Some(i)) => {
                actor.issuer_account_id = i.account_id;
                actor.issuer_arn = i.arn;
                actor.access_key_id = i.access_key_id;
            }
            Err((status, m)) => return error(status, m),
        }
    }
    let now = std::time::SystemTime::now();
    let change = if body.action == "ApiCall" {
        let (Some(event_source), Some(event_name)) = (body.event_source, body.event_name) else {
            return bad_request(
                "ApiCall needs \"event_source\" (e.g. \"s3.amazonaws.com\") and \"event_name\" (e.g. \"PutBucketPolicy\")"
                    .into(),
            );
        };
        if let Err(m) = check_event_source(&event_source).and(check_event_name(&event_name)) {
            return bad_request(m);
        }
        match session {
            RootSession::AccessKey => {
                let service = crate::events::service_of(&event_source);
                match world.use_root_access_key(&account_id, service, now) {
                    Ok(key) => actor.access_key_id = Some(key),
                    Err((status, m)) => {
                        return error(StatusCode::from_u16(status).unwrap_or(StatusCode::CONFLICT), m);
                    }
                }
            }
            // A console or AssumeRoot session of its own: a fresh session key, said in the answer.
            _ if actor.access_key_id.is_none() => {
                actor.access_key_id = Some(format!("ASIA{}", world.rng.token(UPPER_DIGITS, 16)));
            }
            _ => {}
        }
        RootChange::ApiCall {
            event_source,
            event_name,
            read_only: body.read_only.unwrap_or(false),
        }
    } else {
        let action = RootAction {
            name: body.action.clone(),
            access_key_id: body.access_key_id,
            certificate_id: body.certificate_id,
            status: body.status,
            mfa: body.mfa,
            sign_in_fails: body.outcome == Some(Outcome::Failure),
        };
        match world.root_action(&account_id, &action, now) {
            Ok(c) => c,
            Err((status, m)) => {
                return error(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), m);
            }
        }
    };
    drop(world);
    let event_id = org.publish(&actor, std::slice::from_ref(&change), now).pop();
    let mut answer = change.summary();
    answer["account_id"] = account_id.into();
    answer["action"] = body.action.into();
    if matches!(change, RootChange::ApiCall { .. }) {
        answer["session"] = match session {
            RootSession::Console => "console",
            RootSession::AccessKey => "access_key",
            RootSession::AssumedRoot => "assumed_root",
        }
        .into();
        answer["access_key_id"] = actor.access_key_id.clone().into();
    }
    if session == RootSession::AssumedRoot {
        answer["issued_to"] = actor.issuer_arn.clone().into();
    }
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

/// The organization of `account_id` and the request's JSON `body`, or the answer that refuses
/// them: an unknown account (404), then a body not of `shape` (400).
fn account_request<'s, T>(
    sim: &'s Simulator,
    account_id: &str,
    body: Result<Json<T>, JsonRejection>,
    shape: &str,
) -> Result<(&'s Org, T), Box<Response>> {
    with_body(account_org(sim, account_id), body, shape)
}

/// `org` (or the answer that refused it) and the request's JSON `body`, or a 400 when it is not
/// of `shape`.
fn with_body<'s, T>(
    org: Result<&'s Org, Box<Response>>,
    body: Result<Json<T>, JsonRejection>,
    shape: &str,
) -> Result<(&'s Org, T), Box<Response>> {
    let org = org?;
    let Json(body) = body.map_err(|r| Box::new(bad_body(r, shape)))?;
    Ok((org, body))
}

/// A query string as `T`, or a 400 saying what was `expected`.
fn parsed<T>(query: Result<Query<T>, QueryRejection>, expected: &str) -> Result<T, Box<Response>> {
    query.map(|q| q.0).map_err(|r| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("{}; expected {expected}", r.body_text()),
        ))
    })
}

/// `?queue_url=URL`: which organization's queue, when several scenarios have `[events]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    queue_url: Option<String>,
}

/// The organization whose queue the query names (`?queue_url=` as `GET /_simulator/queue` or
/// the SQS endpoint shows it), or the first scenario's with `[events]`.
fn queue_org(sim: &Simulator, query: Result<Query<QueueQuery>, QueryRejection>) -> Result<&Org, Box<Response>> {
    match parsed(query, "?queue_url=URL")?.queue_url {
        None => sim
            .orgs
            .iter()
            .find(|o| o.queue.is_some())
            .ok_or_else(|| Box::new(no_queue())),
        Some(url) => sim
            .orgs
            .iter()
            .find(|o| sim.org_queue_url(o).as_deref() == Some(url.as_str()))
            .ok_or_else(|| {
                let shown: String = url.chars().take(200).collect();
                Box::new(error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "queue_url {shown:?} is not a simulated queue; allowed: {}",
                        sim.queue_urls().join(", ")
                    ),
                ))
            }),
    }
}

/// Put a raw message in the queue, as if any sender had sent it.
async fn post_queue_message(
    State(sim): State<Arc<Simulator>>,
    query: Result<Query<QueueQuery>, QueryRejection>,
    body: Result<Json<MessageBody>, JsonRejection>,
) -> Response {
    let (org, b) = match with_body(queue_org(&sim, query), body, r#"{"body":"any string"}"#) {
        Ok(got) => got,
        Err(r) => return *r,
    };
    let body = b.body;
    if let Err(m) = super::queue::check_body(&body) {
        return error(StatusCode::BAD_REQUEST, m);
    }
    match org.send_raw(body) {
        Some(id) => Json(json!({ "message_id": id, "queue_url": sim.org_queue_url(org) })).into_response(),
        None => no_queue(),
    }
}

async fn get_queue(State(sim): State<Arc<Simulator>>, query: Result<Query<QueueQuery>, QueryRejection>) -> Response {
    let org = match queue_org(&sim, query) {
        Ok(org) => org,
        Err(r) => return *r,
    };
    let (Some(url), Some(c)) = (sim.org_queue_url(org), org.queue_counts()) else {
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
    let (org, b) = match account_request(&sim, &account_id, body, r#"{"mode":"ok"|"access_denied"}"#) {
        Ok(got) => got,
        Err(r) => return *r,
    };
    updated(&mut org.world(), &account_id, "assume_root", |a| a.assume_root = b.mode)
}

/// Apply `change` to the account and answer `{"account_id": ..., "updated": what}`.
fn updated(world: &mut World, account_id: &str, what: &str, change: impl FnOnce(&mut SimAccount)) -> Response {
    match world.account_mut(account_id) {
        Some(a) => {
            change(a);
            Json(json!({ "account_id": account_id, "updated": what })).into_response()
        }
        None => unknown_account(account_id),
    }
}

async fn put_tags(
    State(sim): State<Arc<Simulator>>,
    Path(account_id): Path<String>,
    body: Result<Json<BTreeMap<String, String>>, JsonRejection>,
) -> Response {
    let (org, tags) = match account_request(&sim, &account_id, body, r#"{"owner":"team-a","environment":"prod"}"#) {
        Ok(got) => got,
        Err(r) => return *r,
    };
    if let Err(m) = check_tags("tags", &tags) {
        return error(StatusCode::BAD_REQUEST, m);
    }
    updated(&mut org.world(), &account_id, "tags", |a| a.tags = tags)
}

async fn put_roles(
    State(sim): State<Arc<Simulator>>,
    Path(account_id): Path<String>,
    body: Result<Json<Vec<RoleSpec>>, JsonRejection>,
) -> Response {
    let (org, roles) = match account_request(
        &sim,
        &account_id,
        body,
        r#"["RootAuditRole",{"name":"AuditRole","trusts":["111111111111"],"external_id":"secret-id","max_session_duration":3600}]"#,
    ) {
        Ok(got) => got,
        Err(r) => return *r,
    };
    let mut world = org.world();
    if let Err(m) = check_roles("roles", &roles).and_then(|()| {
        check_organization_access(
            "roles",
            &roles,
            &account_id,
            &world.management_account_id,
            &world.caller_account_id,
        )
    }) {
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
    let org = match account_org(&sim, &account_id) {
        Ok(org) => org,
        Err(r) => return *r,
    };
    let world = org.world();
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
    let org = match account_org(&sim, &account_id) {
        Ok(org) => org,
        Err(r) => return *r,
    };
    let mut world = org.world();
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

/// `?organization_id=o-...`: which organization `features`, `faults` and `rate_limits` change
/// when several scenarios are served; the first scenario's without it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgQuery {
    organization_id: Option<String>,
}

fn query_org(sim: &Simulator, query: Result<Query<OrgQuery>, QueryRejection>) -> Result<&Org, Box<Response>> {
    sim.org_by_id(parsed(query, "?organization_id=o-...")?.organization_id.as_deref())
        .map_err(|m| Box::new(error(StatusCode::NOT_FOUND, m)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeaturesBody {
    enabled: Vec<String>,
}

async fn put_features(
    State(sim): State<Arc<Simulator>>,
    query: Result<Query<OrgQuery>, QueryRejection>,
    body: Result<Json<FeaturesBody>, JsonRejection>,
) -> Response {
    let (org, b) = match with_body(
        query_org(&sim, query),
        body,
        r#"{"enabled":["RootCredentialsManagement","RootSessions"]}"#,
    ) {
        Ok(got) => got,
        Err(r) => return *r,
    };
    let enabled = b.enabled;
    if let Err(m) = check_features("enabled", &enabled) {
        return error(StatusCode::BAD_REQUEST, m);
    }
    org.world().features = enabled;
    Json(json!({ "updated": "features" })).into_response()
}

/// The organization `?organization_id=` names and the JSON body as the TOML value the
/// scenario's reader of `what` takes, or the answer that refuses them.
fn org_and_toml<'s>(
    sim: &'s Simulator,
    query: Result<Query<OrgQuery>, QueryRejection>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
    what: &str,
    shape: &str,
) -> Result<(&'s Org, toml::Value), Box<Response>> {
    let (org, value) = with_body(query_org(sim, query), body, shape)?;
    let value = json_to_toml(value)
        .map_err(|m| Box::new(error(StatusCode::BAD_REQUEST, format!("{what}: {m}; expected {shape}"))))?;
    Ok((org, value))
}

const FAULTS_SHAPE: &str = r#"[{"operation":"AssumeRoot"|"*",...,"kind":"throttling"|"server_error"|"slow"|"not_aws","rate":1.0,"count":5,"delay_ms":0,"account_id":"222222222222"}] or {"AssumeRoot":{"kind":...},...}"#;

/// Replace the injected faults. The body is read and checked by the scenario file's own reader
/// of `faults` ([`parse_faults`]): the same keys, kinds, operations and ranges, and an
/// `account_id` must be an account of the organization; anything else is 400 and changes
/// nothing.
async fn put_faults(
    State(sim): State<Arc<Simulator>>,
    query: Result<Query<OrgQuery>, QueryRejection>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Response {
    let (org, value) = match org_and_toml(&sim, query, body, "faults", FAULTS_SHAPE) {
        Ok(got) => got,
        Err(r) => return *r,
    };
    let mut world = org.world();
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
    query: Result<Query<OrgQuery>, QueryRejection>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Response {
    let (org, value) = match org_and_toml(&sim, query, body, "rate_limits", RATE_LIMITS_SHAPE) {
        Ok(got) => got,
        Err(r) => return *r,
    };
    let limits = match parse_rate_limits(value) {
        Ok(l) => l,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    *org.rate_limits.lock().expect("rate limits poisoned") = RateLimiter::new(&limits, tokio::time::Instant::now());
    Json(json!({ "updated": "rate_limits", "operations": limits.keys().collect::<Vec<_>>() })).into_response()
}

/// Calls answered so far, by operation, in every organization.
async fn get_calls(State(sim): State<Arc<Simulator>>) -> Response {
    Json(json!(sim.all_calls())).into_response()
}

/// Calls answered with the throttling error, by operation (a subset of `GET /_simulator/calls`).
async fn get_throttled(State(sim): State<Arc<Simulator>>) -> Response {
    Json(json!(sim.all_throttled())).into_response()
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

    #[test]
    fn event_sources_and_names_are_checked_with_what_is_allowed() {
        for ok in ["s3.amazonaws.com", "access-analyzer.amazonaws.com", "ec2.amazonaws.com"] {
            assert_eq!(check_event_source(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".amazonaws.com",
            "S3.amazonaws.com",
            "s3",
            "s3.amazonaws.com.evil",
            "a.b.amazonaws.com",
            "s3\n.amazonaws.com",
            &format!("{}.amazonaws.com", "a".repeat(65)),
        ] {
            let e = check_event_source(bad).unwrap_err();
            assert!(
                e.starts_with("event_source ") && e.contains("allowed: NAME.amazonaws.com"),
                "{e}"
            );
        }
        assert_eq!(check_event_name("PutBucketPolicy"), Ok(()));
        assert_eq!(check_event_name(&"A".repeat(128)), Ok(()));
        for bad in ["", "Put Bucket", "iam:GetUser", "ÜberCall", &"A".repeat(129)] {
            let e = check_event_name(bad).unwrap_err();
            assert!(
                e.starts_with("event_name ") && e.contains("allowed: 1 to 128 letters and digits"),
                "{e}"
            );
        }
    }

    fn world() -> World {
        let s = crate::scenario::Scenario::parse(
            "[organization]\nid = \"o-exampleorg1\"\nmanagement_account_id = \"111111111111\"\ncaller_account_id = \"444444444444\"\n\n[[accounts]]\nid = \"222222222222\"\nname = \"a\"\n\n[[accounts]]\nid = \"444444444444\"\nname = \"admin\"\n",
            "t",
        )
        .unwrap();
        World::new(&s)
    }

    #[test]
    fn issued_to_is_an_arn_used_verbatim_or_the_latest_root_session() {
        let mut w = world();
        // Default: the operator of the caller account, not the exporter.
        let a = actor(&w, "222222222222", RootSession::AssumedRoot);
        assert_eq!(a.issuer_arn, "arn:aws:sts::444444444444:assumed-role/Admin/operator");
        assert_eq!(a.issuer_account_id, "444444444444");
        assert_eq!(issuer(&w, "222222222222", None), Ok(None));
        // An ARN: verbatim, its account when the fifth field is one, else the caller's.
        let arn = "arn:aws:iam::555555555555:user/alice";
        assert_eq!(
            issuer(&w, "222222222222", Some(arn)),
            Ok(Some(Issuer {
                account_id: "555555555555".into(),
                arn: arn.into(),
                access_key_id: None
            }))
        );
        for hostile in [
            "arn:\"quoted\"\\back\nline",
            "arn:aws:sts::12345:assumed-role/ünï/🔑",
            "arn:aws:sts::abcdefghijkl:x",
        ] {
            assert_eq!(
                issuer(&w, "222222222222", Some(hostile)),
                Ok(Some(Issuer {
                    account_id: "444444444444".into(),
                    arn: hostile.into(),
                    access_key_id: None
                })),
                "{hostile:?}"
            );
        }
        let longest = format!("arn:{}", "x".repeat(MAX_ARN_CHARS - 4));
        assert!(issuer(&w, "222222222222", Some(&longest)).is_ok());
        for bad in ["", "Admin/operator", "ARN:aws:iam::1:root", &format!("{longest}x")] {
            let (status, m) = issuer(&w, "222222222222", Some(bad)).unwrap_err();
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(
                m.starts_with("issued_to ") && m.contains("allowed: \"self\" or an ARN"),
                "{m}"
            );
            assert!(m.chars().count() < 300, "the message quotes at most 80 characters: {m}");
        }
        // "self": 409 until AssumeRoot issued a session for the account, then that session.
        let (status, m) = issuer(&w, "222222222222", Some("self")).unwrap_err();
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(m.contains("222222222222") && m.contains("AssumeRoot"), "{m}");
        let issued = crate::state::IssuedRootSession {
            access_key_id: "ASIAEXAMPLESESSION01".into(),
            issuer_arn: "arn:aws:sts::444444444444:assumed-role/aws-root-exporter/simulated".into(),
            issuer_account_id: "444444444444".into(),
        };
        w.note_root_session("222222222222", issued.clone());
        assert_eq!(
            issuer(&w, "222222222222", Some("self")),
            Ok(Some(Issuer {
                account_id: issued.issuer_account_id.clone(),
                arn: issued.issuer_arn.clone(),
                access_key_id: Some(issued.access_key_id.clone())
            }))
        );
        // The latest wins; one entry per account.
        let later = crate::state::IssuedRootSession {
            access_key_id: "ASIAEXAMPLESESSION02".into(),
            ..issued
        };
        w.note_root_session("222222222222", later);
        assert_eq!(w.latest_root_sessions.len(), 1);
        assert_eq!(
            issuer(&w, "222222222222", Some("self"))
                .unwrap()
                .unwrap()
                .access_key_id
                .as_deref(),
            Some("ASIAEXAMPLESESSION02")
        );
    }

    #[test]
    fn fields_of_another_action_or_session_are_refused_by_name() {
        let body = |v: serde_json::Value| serde_json::from_value::<RootActionBody>(v).unwrap();
        let refused = |v: serde_json::Value| {
            let b = body(v);
            let session = b.session.unwrap_or(SessionBody::Console);
            misplaced_field(&b, session).map(|r| r.status())
        };
        assert_eq!(
            refused(json!({"action": "CreateAccessKey", "outcome": "Failure"})),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            refused(json!({"action": "ConsoleLogin", "event_name": "X"})),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            refused(json!({"action": "ApiCall", "session": "console", "issued_to": "self"})),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            refused(json!({"action": "ApiCall", "access_key_id": "AKIA..."})),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(refused(json!({"action": "ConsoleLogin", "outcome": "Failure"})), None);
        assert_eq!(
            refused(
                json!({"action": "ApiCall", "event_source": "s3.amazonaws.com", "event_name": "X", "read_only": true, "session": "assumed_root", "issued_to": "self", "hints": false})
            ),
            None
        );
        assert_eq!(
            refused(json!({"action": "DeleteAccessKey", "session": "assumed_root", "issued_to": "self"})),
            None
        );
        assert!(
            serde_json::from_value::<RootActionBody>(json!({"action": "ConsoleLogin", "outcome": "Maybe"})).is_err()
        );
        assert!(serde_json::from_value::<RootActionBody>(json!({"action": "ApiCall", "session": "sso"})).is_err());
    }
}
