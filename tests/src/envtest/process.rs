//! One control-plane process: started with its output in a log file, and
//! killed when dropped — even when the test binary itself is killed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context as _;

/// How many lines of a log an error message quotes.
const TAIL_LINES: usize = 25;

/// Kills the process whose id is `$1` once its standard input closes: the
/// test binary holds the other end, so the kernel closes it however the
/// binary ends (panic, `process::exit`, SIGKILL), and nothing is left behind.
const WATCHDOG: &str = "while read -r _; do :; done; kill -KILL \"$1\" 2>/dev/null";

/// A running child process and its watchdog; both are killed on drop.
pub(crate) struct Process {
    name: &'static str,
    child: Child,
    watchdog: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `program` with `args`, its output going to `log`.
    pub(crate) fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let output = File::create(&log)
            .with_context(|| format!("creating the log file {}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "sous-e2e-watchdog", &child.id().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match watchdog {
            Ok(watchdog) => Ok(Self {
                name,
                child,
                watchdog,
                log,
            }),
            Err(error) => {
                kill(&mut child);
                Err(error).context("starting `sh` to watch over the control plane")
            }
        }
    }

    /// The process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// An error when the process has already exited, quoting its log.
    pub(crate) fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(self.failure(&format!("exited early ({status})"))),
        }
    }

    /// An error saying `what` happened to this process, with the end of its log.
    pub(crate) fn failure(&self, what: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "{} {what}; last lines of {}:\n{}",
            self.name,
            self.log.display(),
            tail(&self.log, TAIL_LINES)
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The watchdog first, so that it cannot kill a process that reused the id.
        kill(&mut self.watchdog);
        kill(&mut self.child);
    }
}

/// Kills and reaps `child`; it may have exited already.
fn kill(child: &mut Child) {
    // An error here means the process is gone already: nothing left to do.
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of the file at `path`, or why it cannot be read.
fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("(cannot read it: {error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn sh(script: &str, log: PathBuf) -> Process {
        let args = ["-c".to_owned(), script.to_owned()];
        Process::spawn("test-sh", Path::new("/bin/sh"), &args, log).unwrap()
    }

    fn is_alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }

    #[test]
    fn an_early_exit_is_reported_with_the_end_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut process = sh("seq 1 100; exit 3", dir.path().join("sh.log"));
        let started = Instant::now();
        let error = loop {
            match process.check_running() {
                Ok(()) if started.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(()) => panic!("`sh` did not exit"),
                Err(error) => break error.to_string(),
            }
        };
        assert!(error.starts_with("test-sh exited early"), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(error.contains("sh.log:\n76\n77\n"), "{error}");
        assert!(error.ends_with("\n99\n100"), "{error}");
    }

    #[test]
    fn dropping_kills_the_process_and_its_watchdog() {
        let dir = tempfile::tempdir().unwrap();
        let mut process = sh("sleep 600", dir.path().join("sh.log"));
        process.check_running().unwrap();
        let (pid, watchdog) = (process.child.id(), process.watchdog.id());
        assert!(is_alive(pid) && is_alive(watchdog));
        drop(process);
        assert!(!is_alive(pid), "the process survived its drop");
        assert!(!is_alive(watchdog), "the watchdog survived its drop");
    }

    #[test]
    fn the_watchdog_kills_the_process_when_its_pipe_closes() {
        let dir = tempfile::tempdir().unwrap();
        let mut process = sh("sleep 600", dir.path().join("sh.log"));
        // What the kernel does when the test binary dies: the pipe closes.
        drop(process.watchdog.stdin.take());
        let started = Instant::now();
        while process.child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the watchdog did not kill the process"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
