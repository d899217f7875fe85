//! A worker that sleeps until frames arrive runs with real-time priority (SCHED_FIFO),
//! so a frame wakes it at once even when its CPU is busy: without it, the wait for
//! another task's time slice made the RTT's p99 at 1 kpps ~4 ms (docs/PERFORMANCE.md).
//! A busy-polling worker keeps the normal policy: it never sleeps, and with that
//! priority it would starve the kernel's own work on its CPU.

use reflector_tests::Rig;
use std::time::{Duration, Instant};

const SCHED_OTHER: u32 = 0;
const SCHED_FIFO: u32 = 1;

/// The scheduling policy of the process's thread named `name` (field 41 of its
/// /proc/PID/task/TID/stat), if there is such a thread.
fn policy_of_thread(pid: i32, name: &str) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("list the threads");
    for task in tasks {
        let dir = task.expect("a thread's /proc entry").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        // The command name may hold spaces; the fields after it start at field 3.
        let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
        return fields.get(41 - 3)?.parse().ok();
    }
    None
}

/// The worker's policy once it has settled (it sets it as it starts, after the
/// reflector has reported that it runs).
fn worker_policy(rig: &Rig, args: &[&str], expected: u32) -> Option<u32> {
    let reflector = rig.start_reflector(args);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut policy = None;
    while Instant::now() < deadline {
        policy = policy_of_thread(reflector.pid(), "reflector-q0");
        if policy == Some(expected) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reflector.stop();
    policy
}

#[test]
fn sleeping_workers_run_with_real_time_priority() {
    let rig = Rig::new("prio");
    for backend in ["xdp", "af-packet"] {
        assert_eq!(
            worker_policy(&rig, &["--backend", backend], SCHED_FIFO),
            Some(SCHED_FIFO),
            "the {backend} worker must run as SCHED_FIFO"
        );
    }
}

#[test]
fn busy_polling_workers_keep_the_normal_policy() {
    let rig = Rig::new("prio-busy");
    assert_eq!(
        worker_policy(&rig, &["--backend", "xdp", "--busy-poll"], SCHED_OTHER),
        Some(SCHED_OTHER),
        "a busy-polling worker must not get real-time priority"
    );
}
