//! `loadtest bench api`: the control plane with one batch of 50,000 users — the API's users
//! list, single users and batch, and the dashboard's batch page, each timed many times against
//! the release `mailfleet serve`, with the service's peak RSS. Unlike the other benchmarks it
//! checks its figures against the targets the control plane is built to (see [`Targets`]) and
//! fails when one is missed, after printing and writing them all.

mod latency;
mod requests;
mod serve;
mod setup;

use serde_json::{Value, json};

use super::process::release_binary;
use super::report::{publish, rounded};
use requests::{Api, Timings};
use serve::Serve;
use setup::{BenchState, StateKind};

#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// Users in the batch (a migration CSV holds at most 50,000).
    #[arg(long, default_value_t = 50_000)]
    pub users: usize,
    /// Requests of each kind (and batch page loads).
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Where the state lives.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub state: StateKind,
}

/// What the control plane must do at 50,000 users.
struct Targets;

impl Targets {
    /// The users list (any page, filter or order) and a user's page, at the 99th percentile.
    const LIST_P99_MS: f64 = 50.0;
    const HELD_TO_LIST_P99: [&str; 8] = [
        "users_first_page",
        "users_middle_page",
        "users_last_page",
        "users_every_page",
        "users_by_state",
        "users_search",
        "users_sorted_by_items",
        "user",
    ];
    /// The dashboard's batch page, every load.
    const BATCH_PAGE_MAX_MS: f64 = 1000.0;
    /// `mailfleet serve`'s peak resident set size, in MB (10^6 bytes).
    const SERVE_RSS_MB: f64 = 300.0;

    fn describe() -> String {
        format!(
            "users list and user p99 < {} ms; batch page < {} ms; serve peak RSS < {} MB",
            Self::LIST_P99_MS,
            Self::BATCH_PAGE_MAX_MS,
            Self::SERVE_RSS_MB
        )
    }

    /// Each target missed, in words.
    fn missed(timings: &Timings, serve_peak_mib: f64) -> Vec<String> {
        let mut missed = Vec::new();
        for kind in Self::HELD_TO_LIST_P99 {
            let p99 = timings
                .get(kind)
                .map_or(f64::NAN, |l| l.percentile_ms(99.0));
            if !under(p99, Self::LIST_P99_MS) {
                missed.push(format!("{kind} p99 {p99:.1} ms"));
            }
        }
        let page = timings
            .get("batch_page")
            .map_or(f64::NAN, |l| l.percentile_ms(100.0));
        if !under(page, Self::BATCH_PAGE_MAX_MS) {
            missed.push(format!("batch_page max {page:.0} ms"));
        }
        let serve_mb = serve_peak_mib * 1024.0 * 1024.0 / 1e6;
        if !under(serve_mb, Self::SERVE_RSS_MB) {
            missed.push(format!("serve peak RSS {serve_mb:.0} MB"));
        }
        missed
    }
}

/// Whether `figure` is below `limit`; a figure that could not be taken (NaN) is not.
fn under(figure: f64, limit: f64) -> bool {
    figure < limit
}

pub async fn run(args: &ApiArgs) -> anyhow::Result<()> {
    let binary = release_binary()?;
    let state = BenchState::create(&binary, args.state, args.users).await?;
    eprintln!(
        "batch create: {} users in {:.1} s",
        args.users, state.batch_create.seconds
    );
    let mut serve = Serve::start(&binary, &state).await?;
    let serve_start_mib = serve.peak_rss_mib();
    let api = Api::new(&serve.base, &state.token);
    let mut timings = Timings::new();
    eprintln!("{} requests of each kind…", args.requests);
    let measured = api.measure(args.users, args.requests, &mut timings).await;
    let serve_peak_mib = serve.peak_rss_mib();
    serve.stop();
    measured?;

    let create = &state.batch_create;
    let mut rows: Vec<(String, Value)> = vec![
        ("users".into(), json!(args.users)),
        (
            "state".into(),
            json!(format!("{:?}", args.state).to_lowercase()),
        ),
        (
            "batch_create".into(),
            json!({
                "seconds": rounded(create.seconds, 2),
                "users_per_second": rounded(args.users as f64 / create.seconds, 0),
                "peak_rss_mib": rounded(create.peak_rss_mib, 1),
            }),
        ),
    ];
    for (kind, latencies) in &timings {
        rows.push(((*kind).to_owned(), latencies.summary()));
    }
    rows.push(("serve_rss_at_start_mib".into(), rounded(serve_start_mib, 1)));
    rows.push(("serve_peak_rss_mib".into(), rounded(serve_peak_mib, 1)));
    rows.push(("target".into(), json!(Targets::describe())));
    let missed = Targets::missed(&timings, serve_peak_mib);
    rows.push(("targets_missed".into(), json!(missed)));
    let rows: Vec<(&str, Value)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    publish(
        "api",
        &format!(
            "bench api: one batch of {} users, {} requests of each kind, mailfleet serve",
            args.users, args.requests
        ),
        &rows,
    )?;
    if !missed.is_empty() {
        anyhow::bail!("targets missed: {}", missed.join("; "));
    }
    Ok(())
}
