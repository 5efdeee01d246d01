//! The simulator's control API, on its own address: change an account's root user or how its
//! root session behaves while the exporter runs, inject faults, and read call counts. The
//! endpoints are listed in the crate documentation ("Control API") and the README.

use std::sync::Arc;

use axum::extract::{Path, State, rejection::JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::Simulator;
use super::scenario::{AssumeRootMode, RootSpec, check_account_id, check_features, parse_faults};
use super::state::{ActiveFault, World};

pub(crate) fn router(sim: Arc<Simulator>) -> Router {
    Router::new()
        .route("/_simulator/accounts/{account_id}/root", put(put_root))
        .route("/_simulator/accounts/{account_id}/assume_root", put(put_assume_root))
        .route("/_simulator/features", put(put_features))
        .route("/_simulator/faults", put(put_faults))
        .route("/_simulator/calls", get(get_calls))
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
    match world.set_root(&account_id, &spec) {
        Some(()) => Json(json!({ "account_id": account_id, "updated": "root" })).into_response(),
        None => unknown_account(&account_id),
    }
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

async fn get_calls(State(sim): State<Arc<Simulator>>) -> Response {
    let world = sim.world.lock().expect("simulator state poisoned");
    Json(json!(world.calls)).into_response()
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
