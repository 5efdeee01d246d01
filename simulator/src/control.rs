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
use super::scenario::{AssumeRootMode, FEATURES, FaultSpec, RootSpec};
use super::state::ActiveFault;

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

const ROOT_SHAPE: &str = r#"{"mfa":["virtual"|"hardware"|"passkey"|"sms"],"password":true,"access_keys":["Active"|"Inactive"],"signing_certificates":[]}"#;

async fn put_root(
    State(sim): State<Arc<Simulator>>,
    Path(account_id): Path<String>,
    body: Result<Json<RootSpec>, JsonRejection>,
) -> Response {
    let spec = match body {
        Ok(Json(spec)) => spec,
        Err(r) => return bad_body(r, ROOT_SHAPE),
    };
    let mut world = sim.world.lock().expect("simulator state poisoned");
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
    let mode = match body {
        Ok(Json(b)) => b.mode,
        Err(r) => return bad_body(r, r#"{"mode":"ok"|"access_denied"}"#),
    };
    let mut world = sim.world.lock().expect("simulator state poisoned");
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
    if let Some(bad) = enabled.iter().find(|f| !FEATURES.contains(&f.as_str())) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown feature {bad:?}; allowed: {}", FEATURES.join(", ")),
        );
    }
    sim.world.lock().expect("simulator state poisoned").features = enabled;
    Json(json!({ "updated": "features" })).into_response()
}

async fn put_faults(State(sim): State<Arc<Simulator>>, body: Result<Json<Vec<FaultSpec>>, JsonRejection>) -> Response {
    let faults = match body {
        Ok(Json(f)) => f,
        Err(r) => {
            return bad_body(
                r,
                r#"[{"operation":"AssumeRoot"|"*",...,"kind":"throttling"|"server_error"|"slow","rate":1.0,"count":5,"delay_ms":0,"account_id":"222222222222"}]"#,
            );
        }
    };
    if let Some(f) = faults.iter().find(|f| !(0.0..=1.0).contains(&f.rate)) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("rate {} is not a fraction; allowed: 0.0 to 1.0", f.rate),
        );
    }
    let mut world = sim.world.lock().expect("simulator state poisoned");
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
