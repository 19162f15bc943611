//! How a running process is seen from outside: logs and traces ([`telemetry`]) and the HTTP
//! surface ([`http`]: `/metrics`, `/healthz`, and `/status` from a pass's status board).

pub mod http;
pub mod telemetry;

use std::sync::Arc;

use mailfleet_stores::rabbitmq_queue::RabbitMqQueue;

use crate::error::CliError;
use crate::run::status_board::StatusBoard;
use crate::settings::Settings;

/// What a coordinating process (`migrate`, `coordinator`, `run`) shows: with `metrics_listen`,
/// `/metrics` and `/status`; with a broker, the queue-depth gauge.
pub async fn status_board(
    settings: &Settings,
    broker: Option<&Arc<RabbitMqQueue>>,
) -> Result<Arc<StatusBoard>, CliError> {
    shown_status_board(StatusBoard::new(), settings, broker).await
}

/// [`status_board`] for a board the caller made (`serve` registers its gauges on its own
/// listener's `/metrics` first).
pub async fn shown_status_board(
    board: Arc<StatusBoard>,
    settings: &Settings,
    broker: Option<&Arc<RabbitMqQueue>>,
) -> Result<Arc<StatusBoard>, CliError> {
    if let Some(listen) = settings.metrics_listen {
        let mut registry = telemetry::engine_registry();
        board.register(&mut registry);
        http::serve(listen, registry, Some(board.clone())).await?;
    }
    if let Some(broker) = broker {
        board.watch_queue_depth(broker.clone());
    }
    Ok(board)
}
