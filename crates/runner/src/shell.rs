//! Which program runs a `run:` step, as GitHub's runner decides it on Linux and macOS:
//! the built-in shells (`bash`, `sh`, `python`, `pwsh`), the default when none is given, and
//! custom command templates such as `perl {0}`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A step's shell, before the script file exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shell {
    /// Program name or path (`bash`, `/usr/bin/env`).
    program: String,
    /// Arguments, where `{0}` stands for the script file.
    args: Vec<String>,
    /// Extension the script file needs (`.ps1` for pwsh, `.py` for python).
    extension: &'static str,
    /// For the default shell only: the fallback when bash is not installed.
    fallback: Option<Box<Shell>>,
    /// How the user wrote it, for messages.
    written: String,
}

/// Why a shell cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    #[error("shell `{written}`: `{program}` was not found in PATH ({path})")]
    NotFound {
        written: String,
        program: String,
        path: String,
    },
    #[error("shell is empty: give a shell name (bash, sh, python, pwsh) or a command with {{0}}")]
    Empty,
}

impl Shell {
    /// The shell for `shell:` (`None` when the step, the job and the workflow defaults are all
    /// silent).
    pub fn parse(shell: Option<&str>) -> Result<Shell, ShellError> {
        let Some(written) = shell else {
            // GitHub: unspecified means `bash -e {0}`, falling back to `sh -e {0}`.
            let mut bash = builtin("bash", &["-e", "{0}"], ".sh", "bash");
            bash.fallback = Some(Box::new(builtin("sh", &["-e", "{0}"], ".sh", "sh")));
            return Ok(bash);
        };
        let trimmed = written.trim();
        Ok(match trimmed {
            "" => return Err(ShellError::Empty),
            "bash" => builtin(
                "bash",
                &["--noprofile", "--norc", "-eo", "pipefail", "{0}"],
                ".sh",
                written,
            ),
            "sh" => builtin("sh", &["-e", "{0}"], ".sh", written),
            "python" => builtin("python", &["{0}"], ".py", written),
            "pwsh" => builtin("pwsh", &["-command", ". '{0}'"], ".ps1", written),
            "powershell" => builtin("powershell", &["-command", ". '{0}'"], ".ps1", written),
            "cmd" => builtin(
                "cmd",
                &["/D", "/E:ON", "/V:OFF", "/S", "/C", "CALL \"{0}\""],
                ".cmd",
                written,
            ),
            custom => {
                let mut parts = custom.split_whitespace().map(str::to_owned);
                let program = parts.next().ok_or(ShellError::Empty)?;
                let mut args: Vec<String> = parts.collect();
                if !args.iter().any(|a| a.contains("{0}")) {
                    args.push("{0}".to_owned());
                }
                Shell {
                    program,
                    args,
                    extension: "",
                    fallback: None,
                    written: written.to_owned(),
                }
            }
        })
    }

    pub fn extension(&self) -> &'static str {
        self.extension
    }

    /// The program to start and its arguments for `script`, with the program looked up in
    /// `path_var` (the step's PATH).
    pub fn command(
        &self,
        script: &Path,
        path_var: &str,
    ) -> Result<(PathBuf, Vec<OsString>), ShellError> {
        match find_program(&self.program, path_var) {
            Some(program) => {
                let script = script.to_string_lossy();
                let args = self
                    .args
                    .iter()
                    .map(|a| OsString::from(a.replace("{0}", &script)))
                    .collect();
                Ok((program, args))
            }
            None => match &self.fallback {
                Some(fallback) => fallback.command(script, path_var),
                None => Err(ShellError::NotFound {
                    written: self.written.clone(),
                    program: self.program.clone(),
                    path: path_var.to_owned(),
                }),
            },
        }
    }
}

fn builtin(program: &str, args: &[&str], extension: &'static str, written: &str) -> Shell {
    Shell {
        program: program.to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        extension,
        fallback: None,
        written: written.to_owned(),
    }
}

/// Looks `program` up in `path_var` unless it contains a `/`.
pub fn find_program(program: &str, path_var: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    path_var
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

    fn check(shell: Option<&str>, expected_program: &str, expected_args: &[&str]) {
        let parsed = Shell::parse(shell).expect("valid shell");
        let (program, args) = parsed.command(Path::new("/tmp/s.sh"), PATH).expect("found");
        assert!(
            program.ends_with(expected_program),
            "{shell:?}: {program:?} does not end with {expected_program}"
        );
        let args: Vec<_> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, expected_args, "{shell:?}");
    }

    #[test]
    fn shells_expand_as_github_documents() {
        check(None, "bash", &["-e", "/tmp/s.sh"]);
        check(
            Some("bash"),
            "bash",
            &["--noprofile", "--norc", "-eo", "pipefail", "/tmp/s.sh"],
        );
        check(Some("sh"), "sh", &["-e", "/tmp/s.sh"]);
        check(
            Some("bash -x {0} extra"),
            "bash",
            &["-x", "/tmp/s.sh", "extra"],
        );
        check(Some("bash -x"), "bash", &["-x", "/tmp/s.sh"]);
    }

    #[test]
    fn default_falls_back_to_sh_without_bash() {
        let (program, _) = Shell::parse(None)
            .expect("default")
            .command(Path::new("/tmp/s.sh"), "/nonexistent:/bin")
            .map(|(p, a)| (p.to_string_lossy().into_owned(), a))
            .expect("bash or sh in /bin");
        assert!(program == "/bin/bash" || program == "/bin/sh", "{program}");
        let err = Shell::parse(None)
            .expect("default")
            .command(Path::new("/tmp/s.sh"), "/nonexistent")
            .expect_err("nothing in PATH");
        assert!(err.to_string().contains("`sh` was not found"), "{err}");
    }

    #[test]
    fn a_missing_shell_names_itself_and_the_path() {
        let err = Shell::parse(Some("fish"))
            .expect("custom shell")
            .command(Path::new("/tmp/s"), "/nonexistent")
            .expect_err("no fish");
        assert_eq!(
            err.to_string(),
            "shell `fish`: `fish` was not found in PATH (/nonexistent)"
        );
    }

    #[test]
    fn extensions_follow_the_shell() {
        assert_eq!(
            Shell::parse(Some("python")).expect("python").extension(),
            ".py"
        );
        assert_eq!(
            Shell::parse(Some("pwsh")).expect("pwsh").extension(),
            ".ps1"
        );
        assert_eq!(Shell::parse(None).expect("default").extension(), ".sh");
        assert_eq!(Shell::parse(Some("  ")), Err(ShellError::Empty));
    }
}
