//! MX checks (ARCHITECTURE.md, "What a user does", step 6): before a batch is completed the
//! domain's MX records should point at the target, and their TTL be at most an hour so that the
//! switch takes effect quickly. `mailfleet dns check` shows them; `batch complete` refuses (without
//! `--force`) while a domain of the batch does not point at the batch's `--target-mx` yet.

use std::net::SocketAddr;

use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use serde::Serialize;

use crate::error::CliError;

/// An MX TTL above this makes the switch slow to reach every sender (Microsoft's advice).
pub const MAX_TTL_BEFORE_SWITCH: u32 = 3600;

#[derive(Debug, Clone, Serialize)]
pub struct MxRecord {
    pub exchange: String,
    pub preference: u16,
    pub ttl: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct MxCheck {
    pub domain: String,
    pub records: Vec<MxRecord>,
    /// `None` when no target was expected.
    pub points_at_target: Option<bool>,
    pub warnings: Vec<String>,
}

/// Looks up `domain`'s MX records (at `server`, else the system's resolvers) and judges them
/// against `expect_mx`.
pub async fn check(
    domain: &str,
    expect_mx: Option<&str>,
    server: Option<SocketAddr>,
) -> Result<MxCheck, CliError> {
    let resolver = match server {
        Some(address) => Resolver::builder_with_config(
            ResolverConfig::from_parts(
                None,
                vec![],
                NameServerConfigGroup::from_ips_clear(&[address.ip()], address.port(), true),
            ),
            TokioConnectionProvider::default(),
        ),
        None => Resolver::builder_tokio()
            .map_err(|e| CliError::failed("reading the system's DNS settings", e))?,
    }
    .build();
    let lookup = resolver
        .mx_lookup(format!("{}.", domain.trim_end_matches('.')))
        .await
        .map_err(|e| CliError::failed(format!("MX lookup of {domain}"), e))?;
    let ttls = lookup.as_lookup().records().iter().map(|r| r.ttl());
    let mut records: Vec<MxRecord> = lookup
        .iter()
        .zip(ttls)
        .map(|(mx, ttl)| MxRecord {
            exchange: host(&mx.exchange().to_ascii()),
            preference: mx.preference(),
            ttl,
        })
        .collect();
    records.sort_by_key(|r| r.preference);
    Ok(judge(domain, records, expect_mx))
}

fn host(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn judge(domain: &str, records: Vec<MxRecord>, expect_mx: Option<&str>) -> MxCheck {
    let mut warnings = Vec::new();
    if let Some(ttl) = records.iter().map(|r| r.ttl).max()
        && ttl > MAX_TTL_BEFORE_SWITCH
    {
        warnings.push(format!(
            "{domain}: MX TTL is {ttl} s; lower it to {MAX_TTL_BEFORE_SWITCH} s or less before switching, so senders follow the switch within an hour"
        ));
    }
    // Mail goes to the most preferred exchange: that one must be the target.
    let points_at_target = expect_mx.map(|expected| {
        let best = records.first().map(|r| r.preference);
        records
            .iter()
            .filter(|r| Some(r.preference) == best)
            .any(|r| r.exchange == host(expected))
    });
    if points_at_target == Some(false) {
        let current: Vec<&str> = records.iter().map(|r| r.exchange.as_str()).collect();
        warnings.push(format!(
            "{domain}: MX points at {}, not at {} yet",
            if current.is_empty() {
                "nothing".to_owned()
            } else {
                current.join(", ")
            },
            host(expect_mx.unwrap_or_default())
        ));
    }
    MxCheck {
        domain: domain.to_owned(),
        records,
        points_at_target,
        warnings,
    }
}

pub fn print(check: &MxCheck) {
    println!("{}:", check.domain);
    for record in &check.records {
        println!(
            "  MX {:>3} {}  (TTL {} s)",
            record.preference, record.exchange, record.ttl
        );
    }
    if check.records.is_empty() {
        println!("  no MX records");
    }
    for warning in &check.warnings {
        println!("  warning: {warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(exchange: &str, preference: u16, ttl: u32) -> MxRecord {
        MxRecord {
            exchange: exchange.into(),
            preference,
            ttl,
        }
    }

    #[test]
    fn the_most_preferred_exchange_must_be_the_target_and_the_ttl_short() {
        let switched = judge(
            "example.com",
            vec![mx("new.mx.example", 10, 300), mx("old.mx.example", 20, 300)],
            Some("New.MX.example."),
        );
        assert_eq!(
            (switched.points_at_target, switched.warnings.len()),
            (Some(true), 0)
        );
        let not_yet = judge(
            "example.com",
            vec![
                mx("old.mx.example", 10, 7200),
                mx("new.mx.example", 20, 7200),
            ],
            Some("new.mx.example"),
        );
        assert_eq!(not_yet.points_at_target, Some(false));
        assert!(
            not_yet.warnings[0].contains("MX TTL is 7200 s"),
            "{:?}",
            not_yet.warnings
        );
        assert!(not_yet.warnings[1].contains("not at new.mx.example yet"));
    }
}
