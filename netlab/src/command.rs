//! Running the iproute2, ethtool and sysctl commands that build a lab.

use crate::LabError;
use std::process::Command;

/// Run `cmd` to completion; an error names the command and what it printed.
pub(crate) fn check(mut cmd: Command) -> Result<(), LabError> {
    let command = describe(&cmd);
    let output = cmd.output().map_err(|source| LabError::Spawn {
        command: command.clone(),
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(LabError::Failed {
        command,
        stderr: if stderr.is_empty() {
            output.status.to_string()
        } else {
            stderr
        },
    })
}

/// `program arg arg...`, as a shell would show it.
fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
