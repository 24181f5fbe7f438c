//! Running external commands: echo them, run them, and turn a failure into an error that says
//! which command failed.

use std::ffi::OsStr;
use std::io::IsTerminal as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, Result, bail};

/// A command to run, plus how it is shown to the user.
pub struct Cmd {
    command: Command,
    shown: String,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let program = program.as_ref();
        Self {
            command: Command::new(program),
            shown: show(program),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        let arg = arg.as_ref();
        self.shown.push(' ');
        self.shown.push_str(&show(arg));
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        args.into_iter().fold(self, Self::arg)
    }

    /// Sets one environment variable of the child (not shown when echoing).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Sets environment variables of the child, e.g. the service URLs found by discovery.
    /// (Edition 2024 makes `std::env::set_var` unsafe, and unsafe code is forbidden here, so
    /// every child gets its environment explicitly.)
    pub fn envs(mut self, vars: &[(&str, String)]) -> Self {
        self.command
            .envs(vars.iter().map(|(key, value)| (key, value)));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    pub fn stdin(mut self, stdio: impl Into<Stdio>) -> Self {
        self.command.stdin(stdio);
        self
    }

    pub fn stdout(mut self, stdio: impl Into<Stdio>) -> Self {
        self.command.stdout(stdio);
        self
    }

    pub fn stderr(mut self, stdio: impl Into<Stdio>) -> Self {
        self.command.stderr(stdio);
        self
    }

    /// Puts the child into a process group of its own, so that the SIGINT a terminal sends on
    /// Ctrl-C to its foreground process group does not reach it.
    pub fn own_process_group(mut self) -> Self {
        self.command.process_group(0);
        self
    }

    /// Echoes the command, runs it with inherited stdio and fails unless it exits successfully.
    pub fn run(mut self) -> Result<()> {
        echo(&self.shown);
        let status = self
            .command
            .status()
            .with_context(|| format!("cannot run `{}`", self.shown))?;
        if !status.success() {
            bail!("`{}` failed ({status})", self.shown);
        }
        Ok(())
    }

    /// Runs the command without echoing it, capturing its output; on failure the error
    /// contains that output.
    pub fn quiet(mut self) -> Result<()> {
        let output = self
            .command
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run `{}`", self.shown))?;
        if !output.status.success() {
            bail!(
                "`{}` failed ({}):\n{}{}",
                self.shown,
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
            );
        }
        Ok(())
    }

    /// Runs the command silently and says whether it succeeded.
    pub fn succeeds(mut self) -> bool {
        self.command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Runs the command silently and returns its standard output.
    pub fn read(mut self) -> Result<String> {
        let output = self
            .command
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run `{}`", self.shown))?;
        if !output.status.success() {
            bail!("`{}` failed ({})", self.shown, output.status);
        }
        String::from_utf8(output.stdout)
            .with_context(|| format!("`{}` printed something that is not UTF-8", self.shown))
    }

    /// Echoes the command and starts it without waiting for it.
    pub fn spawn(self) -> Result<Child> {
        echo(&self.shown);
        self.spawn_quiet()
    }

    /// Starts the command without echoing it and without waiting for it.
    pub fn spawn_quiet(mut self) -> Result<Child> {
        self.command
            .spawn()
            .with_context(|| format!("cannot start `{}`", self.shown))
    }
}

/// Prints `$ command` on stderr, in bold on a terminal (unless `NO_COLOR` is set).
fn echo(shown: &str) {
    let stderr = std::io::stderr();
    if stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        eprintln!("\x1b[1m$ {shown}\x1b[0m");
    } else {
        eprintln!("$ {shown}");
    }
}

/// How an argument is shown: relative to the workspace root when it is a path inside it, and
/// single-quoted when the shell would need quotes.
fn show(arg: &OsStr) -> String {
    let arg = arg.to_string_lossy();
    let root = crate::root().to_string_lossy();
    let arg = match arg
        .strip_prefix(root.as_ref())
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(inside) if !inside.is_empty() => inside.to_owned(),
        _ => arg.into_owned(),
    };
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        arg
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
