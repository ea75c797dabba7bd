//! How a command ends: the exit code and what is printed on stderr.

use std::process::ExitCode;

/// A command that did not succeed.
#[derive(Debug)]
pub enum CommandError {
    /// The command ran and reported a failure itself (a job failed, a workflow is invalid and its
    /// diagnostics were printed). Nothing more is printed.
    Reported(u8),
    /// The user asked for something that cannot be done: bad arguments, unreadable files,
    /// invalid input. Printed with its causes; exit 2.
    Usage(anyhow::Error),
    /// Something went wrong that is not the user's doing. Printed with its causes; exit 1.
    Internal(anyhow::Error),
}

impl CommandError {
    /// A failure already shown to the user.
    pub const FAILED: CommandError = CommandError::Reported(1);
    /// Invalid workflow or input, already shown to the user.
    pub const INVALID: CommandError = CommandError::Reported(2);
    /// Interrupted by Ctrl-C, summary already shown.
    pub const INTERRUPTED: CommandError = CommandError::Reported(130);

    pub fn report(self) -> ExitCode {
        match self {
            CommandError::Reported(code) => ExitCode::from(code),
            CommandError::Usage(err) => {
                print_error(&err);
                ExitCode::from(2)
            }
            CommandError::Internal(err) => {
                print_error(&err);
                ExitCode::from(1)
            }
        }
    }
}

fn print_error(err: &anyhow::Error) {
    use owo_colors::OwoColorize;
    let mut stderr = anstream::stderr();
    let _ = std::io::Write::write_fmt(
        &mut stderr,
        format_args!("{} {err}\n", "error:".red().bold()),
    );
    for cause in err.chain().skip(1) {
        let _ = std::io::Write::write_fmt(&mut stderr, format_args!("  caused by: {cause}\n"));
    }
}

impl From<anyhow::Error> for CommandError {
    fn from(err: anyhow::Error) -> Self {
        CommandError::Usage(err)
    }
}
