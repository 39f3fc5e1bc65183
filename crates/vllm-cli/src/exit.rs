//! The exit codes.

use std::process::ExitCode;

/// The work was done, but some requests failed.
pub(crate) fn partial() -> ExitCode {
    ExitCode::from(1)
}

/// Invalid input or usage: nothing was sent.
pub(crate) fn usage() -> ExitCode {
    ExitCode::from(2)
}

/// Interrupted by Ctrl-C (128 + SIGINT).
pub(crate) fn interrupted() -> ExitCode {
    ExitCode::from(130)
}
