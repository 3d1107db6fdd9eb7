//! Timing helpers: best-of-N wall-clock measurement and fixed-size rayon pools.

use std::time::{Duration, Instant};

use anyhow::Context;
use rayon::ThreadPool;

/// Run `f` `reps` times (at least once) and keep the fastest run and its output.
///
/// The best run is the least disturbed by other work on the machine, which is what a ratio
/// between two figures of the same run needs.
pub fn best_of<T>(
    reps: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(Duration, T)> {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let out = f()?;
        let elapsed = start.elapsed();
        if best.as_ref().is_none_or(|(d, _)| elapsed < *d) {
            best = Some((elapsed, out));
        }
    }
    best.context("no run")
}

/// `count` items in `elapsed` as items per second.
pub fn per_sec(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// A rayon pool of exactly `threads` threads.
pub fn pool(threads: usize) -> anyhow::Result<ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("bench-{i}"))
        .build()
        .context("building a rayon pool")
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat` (Linux; `None`
/// elsewhere). Clock ticks are taken as 1/100 s, the Linux default, so use it for runs of a second
/// or more.
///
/// Unlike wall-clock time, CPU time barely changes when other programs share the machine, so
/// CPU-time figures of single-threaded runs can be compared even on a busy machine.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `utime` and `stime` are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Run `f` and return its output with the CPU time the process spent meanwhile.
pub fn cpu_timed<T>(
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(Option<Duration>, T)> {
    let before = process_cpu_time();
    let out = f()?;
    let spent = match (before, process_cpu_time()) {
        (Some(b), Some(a)) => a.checked_sub(b),
        _ => None,
    };
    Ok((spent, out))
}
