//! The requests `bench api` times, one after another on one keep-alive client, as one
//! operator's browser or script sends them: pages of the users list (following
//! `next_cursor`, filtered, searched, sorted), single users, the batch, the batches — and the
//! dashboard's whole batch page as `app.js` loads it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use super::latency::Latencies;
use super::setup::{BATCH, user};

/// The users list as the dashboard asks for it first (its `PAGE_SIZE` is 50): by address,
/// ascending.
const BY_EMAIL: &str = "limit=50&sort=email";

/// Kinds of request and their response times.
pub type Timings = BTreeMap<&'static str, Latencies>;

pub struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Self {
        Api {
            client: reqwest::Client::new(),
            base: base.to_owned(),
            token: token.to_owned(),
        }
    }

    fn users_path(query: &str) -> String {
        format!("/api/v1/batches/{BATCH}/users?{query}")
    }

    /// GET `path` with the token; its JSON and how long the whole answer took.
    async fn get(&self, path: &str) -> anyhow::Result<(Value, Duration)> {
        let started = Instant::now();
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body = response.bytes().await?;
        let took = started.elapsed();
        if !status.is_success() {
            bail!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
        }
        Ok((serde_json::from_slice(&body)?, took))
    }

    /// GET `path` without a token, as the browser fetches the page and its assets.
    async fn get_asset(&self, path: &str) -> anyhow::Result<()> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("GET {path}: {}", response.status());
        }
        response.bytes().await?;
        Ok(())
    }

    /// Walks the list `query` selects page by page to its end; the cursor of each page
    /// (`None` for the first) and how many users the pages held, each request timed.
    pub async fn walk(
        &self,
        query: &str,
        latencies: &mut Latencies,
    ) -> anyhow::Result<(Vec<Option<String>>, usize)> {
        let mut cursors = vec![None];
        let mut listed = 0;
        loop {
            let path = match cursors.last().cloned().flatten() {
                Some(cursor) => Self::users_path(&format!("{query}&cursor={cursor}")),
                None => Self::users_path(query),
            };
            let (page, took) = self.get(&path).await?;
            latencies.record(took);
            listed += page["users"].as_array().map_or(0, Vec::len);
            match page["next_cursor"].as_str() {
                Some(next) => cursors.push(Some(next.to_owned())),
                None => return Ok((cursors, listed)),
            }
        }
    }

    /// `requests` of each kind, the kinds interleaved so that none is measured only while
    /// the process is warm or cold.
    pub async fn measure(
        &self,
        users: usize,
        requests: usize,
        timings: &mut Timings,
    ) -> anyhow::Result<()> {
        let (pages, listed) = self
            .walk(BY_EMAIL, timings.entry("users_every_page").or_default())
            .await?;
        if listed != users {
            bail!("the users list's pages held {listed} users, the batch {users}");
        }
        let page_count = pages.len();
        let (failed, _) = self
            .walk(
                "limit=50&sort=email&state=Failed",
                &mut Latencies::default(),
            )
            .await?;
        let with_cursor = |query: &str, cursor: &Option<String>| match cursor {
            Some(cursor) => Self::users_path(&format!("{query}&cursor={cursor}")),
            None => Self::users_path(query),
        };
        for round in 0..requests {
            let requests: [(&'static str, String); 9] = [
                ("users_first_page", with_cursor(BY_EMAIL, &pages[0])),
                (
                    "users_middle_page",
                    with_cursor(BY_EMAIL, &pages[page_count / 2]),
                ),
                (
                    "users_last_page",
                    with_cursor(BY_EMAIL, &pages[page_count - 1]),
                ),
                (
                    "users_by_state",
                    if round % 2 == 0 {
                        Self::users_path("limit=50&sort=email&state=Synced")
                    } else {
                        with_cursor(
                            "limit=50&sort=email&state=Failed",
                            &failed[round / 2 % failed.len()],
                        )
                    },
                ),
                (
                    "users_search",
                    Self::users_path(&format!("limit=50&sort=email&q=user{:03}", round % 500)),
                ),
                (
                    "users_sorted_by_items",
                    Self::users_path("limit=50&sort=-items_synced"),
                ),
                (
                    "user",
                    format!(
                        "/api/v1/batches/{BATCH}/users/{}",
                        user(round * 7_919 % users.max(1))
                    ),
                ),
                ("batch", format!("/api/v1/batches/{BATCH}")),
                ("batches", "/api/v1/batches".to_owned()),
            ];
            for (kind, path) in requests {
                let (_, took) = self.get(&path).await?;
                timings.entry(kind).or_default().record(took);
            }
            let took = self.batch_page().await?;
            timings.entry("batch_page").or_default().record(took);
        }
        Ok(())
    }

    /// The dashboard's batch page from a fresh load, as app.js fetches it: the HTML, then its
    /// style and script, then `whoami`; then the event stream opens beside the batch and the
    /// first page of its users. The page is shown when the users arrive.
    async fn batch_page(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.get_asset("/").await?;
        let (style, script) = tokio::join!(self.get_asset("/app.css"), self.get_asset("/app.js"));
        style?;
        script?;
        self.get("/api/v1/whoami").await?;
        let events = self
            .client
            .get(format!("{}/api/v1/events", self.base))
            .bearer_auth(&self.token)
            .header("Accept", "text/event-stream")
            .send();
        let page = async {
            self.get(&format!("/api/v1/batches/{BATCH}")).await?;
            self.get(&Self::users_path(BY_EMAIL)).await?;
            anyhow::Ok(started.elapsed())
        };
        let (events, shown) = tokio::join!(events, page);
        // The stream is dropped here, as when the browser leaves the page.
        let events = events?;
        if !events.status().is_success() {
            bail!("GET /api/v1/events: {}", events.status());
        }
        shown
    }
}
