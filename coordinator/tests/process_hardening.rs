//! The real binary, running, as another process sees it: no core file can be written from it
//! (its core-file limit is 0, set with `PR_SET_DUMPABLE` 0 in the same call at start; the flag
//! itself is checked in-process by `hardening`'s unit test, as /proc does not show it).

#![cfg(target_os = "linux")]

mod common;

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use common::{Running, mailfleet};

#[test]
fn a_running_mailfleet_cannot_dump_core() {
    let state = tempfile::tempdir().unwrap();
    let mut command = mailfleet();
    // The child starts allowed to dump core (soft limit raised to the hard one), so a 0 seen
    // afterwards is mailfleet's own doing.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_CORE, &mut limit);
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_CORE, &limit);
            Ok(())
        });
    }
    let running = Running::new(
        command
            .args(["run", "--poll-interval", "1s", "--state-dir"])
            .arg(state.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let limits_file = format!("/proc/{}/limits", running.id());
    // The limit is set before anything else runs; wait only for exec to have happened.
    let mut core = String::new();
    for _ in 0..200 {
        let limits = std::fs::read_to_string(&limits_file).unwrap_or_default();
        let exec_done = std::fs::read_link(format!("/proc/{}/exe", running.id()))
            .is_ok_and(|exe| exe.ends_with("mailfleet"));
        if exec_done && let Some(line) = limits.lines().find(|l| l.starts_with("Max core")) {
            core = line.to_owned();
            if core.split_whitespace().nth(4) == Some("0") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    assert_eq!(core.split_whitespace().nth(5), Some("0"), "{core}");
    running.terminate();
}
