//! `mailfleet verify BATCH [--user EMAIL]`: reads source and target now and lists every
//! message missing on the target or present there more often than on the source. Exit 0 when
//! every verified user is exact, 1 otherwise (also when a user cannot be read).

use std::process::ExitCode;

use mailfleet_worker::Tuning;
use mailfleet_worker::verify::{UserVerification, verify_user};
use serde::{Deserialize, Serialize};

use super::print_json;
use crate::backends::open_admin;
use crate::cli::admin::VerifyArgs;
use crate::error::CliError;
use crate::records;
use crate::service::batch_job::{BatchJob, batch_job};
use crate::settings::Settings;
use crate::tenant_stores::TenantStores;

/// One user's verification: exact or not, and why.
#[derive(Serialize, Deserialize)]
pub struct Verified {
    pub email: String,
    pub exact: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub result: Option<UserVerification>,
}

pub async fn run(args: &VerifyArgs, settings: &Settings) -> Result<ExitCode, CliError> {
    let stores: TenantStores = open_admin(settings, &args.state.state_dir).await?.into();
    let verified = verify(
        &stores,
        &args.batch,
        args.user.as_deref(),
        settings.tuning(),
    )
    .await?;
    Ok(print_verified(&args.batch, &verified, args.json))
}

/// What `verify` prints, here or through the API; exit 1 unless every user is exact.
pub fn print_verified(batch: &str, verified: &[Verified], json: bool) -> ExitCode {
    if json {
        print_json(&serde_json::json!({ "batch": batch, "users": verified }));
    } else {
        print_human(verified);
    }
    let all_exact = verified.iter().all(|v| v.exact);
    ExitCode::from(if all_exact { 0 } else { 1 })
}

/// Reads source and target of batch `name`'s users (or only `only`) now and compares them.
pub async fn verify(
    stores: &TenantStores,
    name: &str,
    only: Option<&str>,
    tuning: Tuning,
) -> Result<Vec<Verified>, CliError> {
    let batch = records::batch(stores.state.as_ref(), name).await?;
    let BatchJob { job, .. } = batch_job(
        &stores.tenant,
        &batch,
        stores.state.as_ref(),
        stores.checkpoints.clone(),
        stores.credentials.clone(),
        tuning,
    )
    .await?;
    let users = stores.state.users(&batch.name).await?;
    let selected: Vec<_> = users
        .iter()
        .filter(|u| only.is_none_or(|only| u.email.eq_ignore_ascii_case(only)))
        .collect();
    if let (Some(only), true) = (only, selected.is_empty()) {
        return Err(CliError::NotFound(format!(
            "batch {} has no user {only}",
            batch.name
        )));
    }
    let mut verified = Vec::new();
    for user in selected {
        let mailbox = user.mailbox_user();
        verified.push(match verify_user(&job, &mailbox).await {
            Ok(result) => Verified {
                email: user.email.clone(),
                exact: result.is_exact(),
                error: None,
                result: Some(result),
            },
            Err(error) => Verified {
                email: user.email.clone(),
                exact: false,
                error: Some(error.to_string()),
                result: None,
            },
        });
    }
    Ok(verified)
}

fn print_human(verified: &[Verified]) {
    for user in verified {
        let Some(result) = &user.result else {
            println!(
                "{}: cannot verify: {}",
                user.email,
                user.error.as_deref().unwrap_or_default()
            );
            continue;
        };
        println!(
            "{}: {} ({} folders, {} messages on the source, {} on the target{}{})",
            user.email,
            if user.exact { "exact" } else { "DIFFERS" },
            result.folders,
            result.source_messages,
            result.target_messages,
            match result.over_size_limit {
                0 => String::new(),
                n => format!(", {n} over the size limit"),
            },
            match result.target_only {
                0 => String::new(),
                n => format!(", {n} only on the target"),
            },
        );
        for (what, list) in [
            ("missing", &result.missing),
            ("duplicated", &result.duplicated),
        ] {
            for item in list {
                println!(
                    "  {what} x{} in {}: {} | {} | {} | {} bytes",
                    item.copies,
                    item.folder,
                    item.message.subject.as_deref().unwrap_or("(no subject)"),
                    item.message.date.as_deref().unwrap_or("(no date)"),
                    item.message
                        .message_id
                        .as_deref()
                        .unwrap_or("(no Message-ID)"),
                    item.message.size
                );
            }
        }
        for item in &result.flags_differ {
            println!(
                "  flags differ in {}: {} | {} | source {} | target {}",
                item.folder,
                item.message.subject.as_deref().unwrap_or("(no subject)"),
                item.message
                    .message_id
                    .as_deref()
                    .unwrap_or("(no Message-ID)"),
                flag_list(&item.source_flags),
                flag_list(&item.target_flags),
            );
        }
    }
}

/// `(\Seen \Flagged)`, or `()` for none, as IMAP writes a flag list.
fn flag_list(flags: &[String]) -> String {
    format!("({})", flags.join(" "))
}
