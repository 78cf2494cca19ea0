//! Operations endpoints: liveness, readiness and Prometheus metrics.

use crate::routing::RouteBook;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

pub fn routes() -> RouteBook<AppState> {
    RouteBook::new()
        .get("/healthz", || async { "ok" })
        .get("/readyz", ready)
        .get("/metrics", metrics)
}

/// Ready when the database answers.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(error = %err, "database not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let pool = state.store.pool();
    let body = format!(
        "# HELP tally_db_connections Open database connections.\n# TYPE tally_db_connections gauge\ntally_db_connections {}\n\
         # HELP tally_db_connections_idle Idle database connections.\n# TYPE tally_db_connections_idle gauge\ntally_db_connections_idle {}\n\
         # HELP tally_build_info Build of this instance.\n# TYPE tally_build_info gauge\ntally_build_info{{version=\"{}\"}} 1\n",
        pool.size(),
        pool.num_idle(),
        env!("CARGO_PKG_VERSION"),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
