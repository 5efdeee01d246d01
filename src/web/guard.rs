//! The middleware of every request: basic auth (when the web configuration has users) and the
//! configured response headers.

use super::*;

/// Marks a request to an [`UNAUTHENTICATED_PATHS`] path that came without valid credentials
/// while basic auth is on: its handler answers without details.
#[derive(Debug, Clone, Copy)]
pub struct Unauthenticated;

/// Middleware: basic authentication (except for [`UNAUTHENTICATED_PATHS`]) and the configured
/// response headers, from the configuration in force for each request (the last one the watcher
/// published: no file is touched here).
pub async fn guard(State(live): State<Arc<LiveWebConfig>>, mut request: Request, next: Next) -> Response {
    let config = live.current();
    let mut response = if config.users.is_empty() {
        next.run(request).await
    } else if UNAUTHENTICATED_PATHS.contains(&request.uri().path()) {
        // Probes send no credentials (and pay no bcrypt); a person who does gets the details.
        let authorization = request.headers().get(header::AUTHORIZATION);
        let allowed = match authorization {
            None => false,
            Some(_) => live.auth().check(&config, authorization).await == Verdict::Allowed,
        };
        if !allowed {
            request.extensions_mut().insert(Unauthenticated);
        }
        next.run(request).await
    } else {
        match live
            .auth()
            .check(&config, request.headers().get(header::AUTHORIZATION))
            .await
        {
            Verdict::Allowed => next.run(request).await,
            Verdict::Denied => (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    "Basic realm=\"aws-root-exporter\", charset=\"UTF-8\"",
                )],
                "unauthorized\n",
            )
                .into_response(),
            Verdict::Busy => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "too many password checks waiting; retry later\n",
            )
                .into_response(),
        }
    };
    for (name, value) in &config.headers {
        response.headers_mut().insert(name, value.clone());
    }
    response
}
