//! Logs (tracing; text or JSON lines on stderr), traces (OpenTelemetry over OTLP/HTTP, only when
//! `otlp_endpoint` is set) and the Prometheus registry of this process.
//!
//! The log filter applies to the log lines only: traces always carry the `info` spans (one per
//! task, one per run), so turning logs down to `warn` does not empty the traces.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prometheus_client::registry::Registry;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::error::CliError;
use crate::settings::Settings;

/// Keeps the trace pipeline alive; dropping it flushes the spans not yet exported.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("mailfleet: traces not flushed: {error}");
        }
    }
}

/// Installs the process's log subscriber (and trace export when configured). A log filter that
/// does not parse, or an OTLP endpoint that is not a URL, is invalid input.
pub fn init(settings: &Settings, service: &'static str) -> Result<TelemetryGuard, CliError> {
    let filter = settings.log.as_deref().unwrap_or("warn");
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| CliError::Invalid(format!("log filter {filter:?}: {e}")))?;
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let logs = if settings.log_json.unwrap_or(false) {
        logs.json().with_filter(filter).boxed()
    } else {
        logs.with_filter(filter).boxed()
    };
    let tracer_provider = settings
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| tracer_provider(endpoint, service))
        .transpose()?;
    let traces = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("mailfleet"))
            .with_filter(LevelFilter::INFO)
    });
    // async-imap writes every command it sends (LOGIN with its password, AUTHENTICATE's
    // credentials) and every answer (mail included) to `log` at trace level: its records are
    // never turned into events, so no log filter, level or layer can show them.
    tracing_log::LogTracer::builder()
        .ignore_crate("async_imap")
        .ignore_crate("imap_proto")
        .init()
        .expect("the log bridge is installed once per process");
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(logs).with(traces))
        .expect("the log subscriber is installed once per process");
    Ok(TelemetryGuard { tracer_provider })
}

/// Spans batched and sent as OTLP/HTTP protobuf to `{endpoint}/v1/traces`.
fn tracer_provider(endpoint: &str, service: &'static str) -> Result<SdkTracerProvider, CliError> {
    let invalid =
        |e: &dyn std::fmt::Display| CliError::Invalid(format!("otlp_endpoint {endpoint:?}: {e}"));
    let base = url::Url::parse(endpoint).map_err(|e| invalid(&e))?;
    let traces_url = if base.path().ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{}/v1/traces", base.as_str().trim_end_matches('/'))
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url)
        .build()
        .map_err(|e| invalid(&e))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}

/// A registry with the engine's counters (messages, bytes, tasks, retries).
pub fn engine_registry() -> Registry {
    let mut registry = Registry::default();
    mailfleet_worker::metrics::engine().register(&mut registry);
    registry
}
