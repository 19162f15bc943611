//! Running a tool as a child process and reading what the kernel accounted for it: wall time
//! and CPU seconds (user + system) from `wait4` — per child, not the process total — and peak
//! RSS sampled from the child's own `VmHWM`. (`ru_maxrss` would not do: it also counts the
//! benchmark's own memory, shared with the child between spawn and exec.)

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::process::peak_rss_mib;

#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_mib: f64,
}

impl Measured {
    /// Each figure's median over `runs` (figures taken separately: the median time and the
    /// median memory may come from different runs).
    pub fn median(runs: &[Measured]) -> Measured {
        let median = |figure: fn(&Measured) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(figure).collect();
            values.sort_by(f64::total_cmp);
            match values.len() {
                0 => 0.0,
                n if n % 2 == 1 => values[n / 2],
                n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
            }
        };
        Measured {
            seconds: median(|m| m.seconds),
            cpu_seconds: median(|m| m.cpu_seconds),
            peak_rss_mib: median(|m| m.peak_rss_mib),
        }
    }
}

/// Runs `command` to the end; fails when it exits unsuccessfully.
pub fn run(mut command: Command, label: &str) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("starting {label}"))?;
    let pid = child.id() as libc::pid_t;
    // The child is reaped here, by wait4, which also returns its resource usage.
    std::mem::forget(child);
    let finished = Arc::new(AtomicBool::new(false));
    let sampler = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            let mut peak_mib = 0f64;
            while !finished.load(Ordering::Relaxed) {
                peak_mib = peak_mib.max(peak_rss_mib(pid as u32).unwrap_or(0.0));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak_mib
        })
    };
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped; both pointers are valid for writes.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    finished.store(true, Ordering::Relaxed);
    let peak_rss_mib = sampler.join().unwrap_or(0.0);
    if reaped != pid {
        bail!("{label}: wait4 failed: {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{label} failed (wait status {status})");
    }
    Ok(Measured {
        seconds,
        cpu_seconds: cpu_seconds(&usage),
        peak_rss_mib,
    })
}

/// CPU seconds (user + system) of this process's children reaped so far.
pub fn children_cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for writes.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    cpu_seconds(&usage)
}

fn cpu_seconds(usage: &libc::rusage) -> f64 {
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
