//! `mailfleet serve`: what `mailfleet run` does (the scheduler, [`service::run`]) plus, on
//! `--listen`, the HTTP API under `/api/v1`, the dashboard at `/`, `/metrics` and `/healthz` —
//! over HTTPS with `--tls-cert`/`--tls-key`. The API works on the same stores as the scheduler and the
//! command line, so a batch created by any of them is the same batch.

use std::sync::Arc;

use axum::Router;

use crate::api::listener::{self, Tls};
use crate::api::rate_limit::RateLimiter;
use crate::api::{self, ApiState};
use crate::backends;
use crate::cli::run::ServeArgs;
use crate::dashboard;
use crate::error::CliError;
use crate::observe::{http, telemetry};
use crate::run::status_board::StatusBoard;
use crate::service;
use crate::settings::Settings;
use crate::shutdown::StopSignal;

pub async fn run(args: &ServeArgs, settings: &Settings, stop: &StopSignal) -> Result<(), CliError> {
    let state_dir = &args.service.state.state_dir;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::load(cert, key)?),
        _ => None,
    };
    let stores = backends::open_provider(settings, state_dir).await?;
    let api = Arc::new(ApiState {
        control: stores.control.clone(),
        stores,
        limiter: RateLimiter::per_minute(args.rate_limit),
        tuning: settings.tuning(),
        dns_server: settings.dns_server,
    });
    // `/metrics` carries the scheduler's gauges (users by state, pending tasks); `/status`,
    // every tenant's users unauthenticated, is not served here: the API shows each tenant its
    // own.
    let board = StatusBoard::new();
    let mut registry = telemetry::engine_registry();
    board.register(&mut registry);
    let app: Router = api::router(api)
        .merge(http::router(registry, None))
        .merge(dashboard::router());
    let server = listener::serve(args.listen, tls, app).await?;
    let result = service::run_with_board(&args.service, settings, stop, board).await;
    server.abort();
    result
}
