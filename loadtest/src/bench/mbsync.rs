//! mbsync (Debian's isync) set up as an administrator would for a migration, for benchmarks
//! that run it beside mailfleet.

use std::path::Path;

use mailfleet_testkit::DovecotServer;

/// A one-way copy source → target of every folder of `(login, password)`: pull, create folders
/// on the target, keep arrival dates, never expunge; sync state under `state`.
pub fn mbsync_config(
    source: &DovecotServer,
    target: &DovecotServer,
    user: (&str, &str),
    state: &Path,
) -> String {
    let account = |name: &str, port: u16| {
        format!(
            "IMAPAccount {name}\nHost 127.0.0.1\nPort {port}\nUser {}\nPass {}\nSSLType None\nAuthMechs LOGIN\n\nIMAPStore {name}-store\nAccount {name}\n\n",
            user.0, user.1
        )
    };
    format!(
        "{}{}Channel migrate\nFar :source-store:\nNear :target-store:\nPatterns *\nCreate Near\nSync Pull\nExpunge None\nCopyArrivalDate yes\nSyncState {}/\n",
        account("source", source.port()),
        account("target", target.port()),
        state.display()
    )
}
