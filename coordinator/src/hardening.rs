//! Keeps the secrets a mailfleet process holds in memory (users' and admins' passwords, OAuth2
//! client secrets, keys and tokens, the sealing key) out of reach of other processes: on
//! Linux the process is made non-dumpable (`PR_SET_DUMPABLE` 0: no core file, no `ptrace`
//! attach or `/proc/<pid>/mem` read by other processes of the same user) and its core-file
//! limit set to 0. The values themselves are zeroed when dropped (`secrecy`'s `SecretString`
//! and the cipher's `zeroize` feature); this covers the time they are alive.

/// Called first thing in `main`, before any secret is read. Errors are returned for the
/// caller to report; mailfleet still runs where the calls are not allowed.
pub fn forbid_memory_dumps() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_DUMPABLE takes one integer argument and touches no memory.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `none` is a valid rlimit for the duration of the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether the process is dumpable now.
#[cfg(target_os = "linux")]
pub fn is_dumpable() -> bool {
    // SAFETY: PR_GET_DUMPABLE takes no argument and returns the flag.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) != 0 }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    // Each test runs in a process of its own under nextest; under `cargo test` this only
    // makes the test binary non-dumpable, which harms nothing.
    #[test]
    fn after_the_call_the_process_is_not_dumpable() {
        forbid_memory_dumps().unwrap();
        assert!(!is_dumpable());
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let core = limits
            .lines()
            .find(|line| line.starts_with("Max core file size"))
            .unwrap();
        assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    }
}
