//! Running iptables and friends, optionally behind a command prefix such as
//! `ip netns exec NS`: the only place the NAT code spawns processes.

use std::io::Write;
use std::process::{Command, Stdio};

use super::NatError;

/// Runs programs, each behind the same argv prefix (empty = directly on this host).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runner {
    prefix: Vec<String>,
}

impl Runner {
    /// Runs programs directly, on this host's network namespace.
    pub fn host() -> Runner {
        Runner::default()
    }

    /// Runs every program as `prefix… program args…`.
    pub fn with_prefix(prefix: Vec<String>) -> Runner {
        Runner { prefix }
    }

    /// Runs every program inside the named network namespace (`ip netns exec NAME`).
    pub fn netns(name: &str) -> Runner {
        let prefix = ["ip", "netns", "exec", name];
        Runner::with_prefix(prefix.iter().map(|s| s.to_string()).collect())
    }

    /// Runs `program args…`, feeding it `stdin`, and returns its stdout; a non-zero
    /// exit is an error carrying its stderr. Callers bound the run time through the
    /// program's own options (iptables' `-w SECONDS`).
    pub fn run(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, NatError> {
        let mut argv = self
            .prefix
            .iter()
            .map(String::as_str)
            .chain([program])
            .chain(args.iter().copied());
        let first = argv.next().unwrap_or(program);
        let shown = self.describe(program, args);
        let spawn_error = |source| NatError::Spawn {
            program: shown.clone(),
            source,
        };
        let mut child = Command::new(first)
            .args(argv)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // Batches are a few KiB, far below the pipe buffer, so writing before
            // reading the child's output cannot deadlock. Dropping the pipe sends EOF.
            pipe.write_all(text.as_bytes()).map_err(spawn_error)?;
        }
        let output = child.wait_with_output().map_err(spawn_error)?;
        if !output.status.success() {
            return Err(NatError::Failed {
                program: shown,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The command line as shown in errors.
    fn describe(&self, program: &str, args: &[&str]) -> String {
        let mut words: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        words.push(program);
        words.extend(args);
        words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_stdin_and_failure_are_reported() {
        let runner = Runner::host();
        let out = runner.run("cat", &[], Some("batch\n"));
        assert_eq!(out.ok().as_deref(), Some("batch\n"));
        match runner.run("sh", &["-c", "echo nope >&2; exit 3"], None) {
            Err(NatError::Failed {
                program, stderr, ..
            }) => {
                assert_eq!(
                    (program.as_str(), stderr.as_str()),
                    ("sh -c echo nope >&2; exit 3", "nope")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            runner.run("/nonexistent/iptables", &[], None),
            Err(NatError::Spawn { .. })
        ));
    }

    #[test]
    fn a_prefix_goes_in_front_of_every_program() {
        let runner = Runner::with_prefix(vec!["env".into(), "VGW=1".into()]);
        let out = runner.run("sh", &["-c", "echo $VGW"], None);
        assert_eq!(out.ok().as_deref(), Some("1\n"));
        assert_eq!(
            Runner::netns("x").describe("iptables", &["-S"]),
            "ip netns exec x iptables -S"
        );
    }
}
