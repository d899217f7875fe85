//! Dying with the control plane. `reflector-control` starts each worker with its own
//! pid in `REFLECTOR_PARENT_PID`; the worker then asks the kernel for SIGTERM when that
//! process dies, so a crashed or SIGKILLed control plane never leaves XDP programs
//! attached by orphans. A worker run by hand, without the variable, is unaffected.

#[cfg(target_os = "linux")]
use settings::PARENT_PID_ENV;

/// Call first thing in `main`. Exits at once if the control plane that started this
/// worker is already gone, or if its death could not be watched for.
#[cfg(target_os = "linux")]
pub fn die_with_parent() {
    match watch_parent() {
        Ok(true) => {}
        // Orphaned before the request took effect: nobody reads what we would print.
        Ok(false) => std::process::exit(1),
        Err(error) => {
            eprintln!(
                "reflector: {}",
                settings::error_text::one_line(error.as_ref())
            );
            std::process::exit(1);
        }
    }
}

/// Whether the control plane named in the environment (if any) is still our parent,
/// now that its death will SIGTERM us.
#[cfg(target_os = "linux")]
fn watch_parent() -> anyhow::Result<bool> {
    use anyhow::Context;
    use nix::sys::signal::Signal;
    let Some(value) = std::env::var_os(PARENT_PID_ENV) else {
        return Ok(true);
    };
    let parent: i32 = value
        .to_str()
        .and_then(|v| v.parse().ok())
        .with_context(|| {
            format!("{PARENT_PID_ENV}={value:?} is not a process id; unset it to run by hand")
        })?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)
        .context("cannot ask to be stopped along with the control plane (PR_SET_PDEATHSIG)")?;
    Ok(nix::unistd::getppid().as_raw() == parent)
}

/// Only Linux has a parent-death signal; elsewhere the control plane's own shutdown
/// is all that stops its workers.
#[cfg(not(target_os = "linux"))]
pub fn die_with_parent() {}
