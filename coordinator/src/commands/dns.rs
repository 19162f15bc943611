//! `mailfleet dns check DOMAIN [--expect-mx HOST]`: a domain's MX records and their TTL before
//! the switch; exit 1 while mail does not go to the expected exchanger yet.

use std::process::ExitCode;

use super::print_json;
use crate::cli::admin::DnsCheckArgs;
use crate::error::CliError;
use crate::service::mx_check;
use crate::settings::Settings;

pub async fn run(args: &DnsCheckArgs, settings: &Settings) -> Result<ExitCode, CliError> {
    let check =
        mx_check::check(&args.domain, args.expect_mx.as_deref(), settings.dns_server).await?;
    if args.json {
        print_json(&check);
    } else {
        mx_check::print(&check);
    }
    Ok(ExitCode::from(u8::from(
        check.points_at_target == Some(false),
    )))
}
