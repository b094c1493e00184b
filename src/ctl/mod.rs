//! `vertogw ctl`: the admin API's command-line client, so operators need no curl
//! recipes. Each verb is one request ([`api`]) over plain HTTP ([`http`]) to the target
//! the options name ([`target`]); the answer is printed as a table or a sentence
//! ([`table`]), or as the API's JSON with `--json`.
//!
//! Exit codes: 0 done; 1 the admin API answered an error (a JSON-RPC error, a 4xx or
//! 5xx status, 401 for a missing or wrong token), or its answer could not be written;
//! 2 no answer was had (the URL, map or token file is unusable, the connection was
//! refused, or the bounded wait ran out).

pub mod api;
pub mod http;
pub mod table;
pub mod target;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::Value;

use self::api::{ApiError, ApiRequest};
use self::http::TransportError;
use self::target::TargetError;

/// Done.
pub const OK: i32 = 0;
/// The admin API answered with an error.
pub const API_ERROR: i32 = 1;
/// No answer: nothing to send it to, or it could not be reached in time.
pub const UNREACHABLE: i32 = 2;

/// Options of `ctl`.
#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The admin API's URL (plain http://) [default: the map's [admin] listen, else http://127.0.0.1:9090].
    #[arg(long, value_name = "URL", global = true)]
    admin: Option<String>,
    /// A file holding the admin token (one line); wins over the map's [admin] token.
    #[arg(long, value_name = "F", global = true)]
    token_file: Option<PathBuf>,
    /// The partition map whose [admin] listen and token to use (read, never changed).
    #[arg(long = "config", value_name = "MAP", global = true)]
    config: Option<PathBuf>,
    /// Print the API's JSON (for RPC verbs its `result`) instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// What to ask.
    #[command(subcommand)]
    verb: Verb,
}

/// The verbs of `ctl`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// Every node (state, load, probe RTT, drain) and partition (active node, pin), and the last reload.
    Status,
    /// Drain a node: idle sessions move, sessions with calls stay (until --deadline).
    Drain {
        /// The node, by its [[node]] name.
        node: String,
        /// Close the sessions still on it after this many seconds (1001).
        #[arg(long, value_name = "S")]
        deadline: Option<u64>,
    },
    /// End a node's drain at once.
    Undrain {
        /// The node, by its [[node]] name.
        node: String,
    },
    /// Pin a partition to a node (no automatic failback), or end the pin with --auto.
    #[command(override_usage = "vertogw ctl switch PARTITION NODE|--auto")]
    Switch {
        /// The partition, by its [[partition]] name.
        partition: String,
        /// The node to pin it to (up, and in the partition's list).
        #[arg(required_unless_present = "auto", conflicts_with = "auto")]
        node: Option<String>,
        /// End the pin: the partition follows its failback rule again.
        #[arg(long)]
        auto: bool,
    },
    /// List the sessions (up to 1,000), optionally of one partition or node.
    Sessions {
        /// Only this partition's sessions.
        #[arg(long, value_name = "P")]
        partition: Option<String>,
        /// Only this node's sessions.
        #[arg(long, value_name = "N")]
        node: Option<String>,
    },
    /// Close the sessions with a Verto sessid (1008) and forget where it was sticky.
    Kick {
        /// The session's Verto sessid.
        sessid: String,
        /// Send verto.punt first, so the client does not reconnect.
        #[arg(long)]
        punt: bool,
    },
    /// Show where a login is routed now and its sessions.
    Route {
        /// The login, e.g. 1000@acme.example.com.
        login: String,
    },
    /// Reload the map, certificates and keys (as SIGHUP); print every problem if it is refused.
    Reload,
}

/// Why `ctl` did not print a result.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Nothing to send the request to.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// No answer.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The API answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl CtlError {
    /// The exit code it means.
    pub fn exit_code(&self) -> i32 {
        match self {
            CtlError::Api(_) => API_ERROR,
            CtlError::Target(_) | CtlError::Transport(_) => UNREACHABLE,
        }
    }
}

/// Runs `ctl`: asks, prints the answer to `stdout` or the error to `stderr`; returns
/// the exit code.
pub fn run(args: &CtlArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(stderr, "error: cannot start the runtime: {e}");
            return UNREACHABLE;
        }
    };
    match runtime.block_on(ask(args)) {
        Ok(result) => {
            let text = match args.json {
                true => format!("{result}\n"),
                false => render(&args.verb, &result),
            };
            match stdout.write_all(text.as_bytes()) {
                Ok(()) => OK,
                // The answer came but could not be delivered (a closed pipe, a full disk).
                Err(e) => {
                    let _ = writeln!(stderr, "error: writing the result: {e}");
                    API_ERROR
                }
            }
        }
        Err(e) => {
            // A failing stderr leaves nowhere to report; the exit code still tells.
            let _ = writeln!(stderr, "error: {e}");
            e.exit_code()
        }
    }
}

/// Resolves the target, sends the verb's request and returns its result.
pub async fn ask(args: &CtlArgs) -> Result<Value, CtlError> {
    let target = target::resolve(
        args.admin.as_deref(),
        args.token_file.as_deref(),
        args.config.as_deref(),
    )?;
    let request = ApiRequest::for_verb(&args.verb);
    let (method, path, body) = request.parts();
    let answer = http::exchange(&target, method, path, body, request.timeout()).await?;
    let result = api::result_of(
        &request,
        answer.status,
        &answer.body,
        target.token.is_some(),
    )?;
    Ok(result)
}

/// The human rendering of `verb`'s result.
pub fn render(verb: &Verb, result: &Value) -> String {
    match verb {
        Verb::Status => table::status(result),
        Verb::Drain { .. } | Verb::Undrain { .. } => table::drain(result),
        Verb::Switch { .. } => table::switch(result),
        Verb::Sessions { .. } => table::sessions(result),
        Verb::Kick { sessid, punt } => table::kick(result, sessid, *punt),
        Verb::Route { .. } => table::route(result),
        Verb::Reload => table::reload(result),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(line: &str) -> Result<CtlArgs, String> {
        match Cli::try_parse_from(line.split_whitespace()) {
            Ok(Cli {
                command: Command::Ctl(args),
                ..
            }) => Ok(args),
            Ok(other) => Err(format!("parsed as {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    fn verb(line: &str) -> Verb {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}")).verb
    }

    #[test]
    fn every_verb_of_the_contract_parses() {
        let node = || "fs1".to_owned();
        assert_eq!(verb("vertogw ctl status"), Verb::Status);
        assert_eq!(
            verb("vertogw ctl drain fs1 --deadline 60"),
            Verb::Drain {
                node: node(),
                deadline: Some(60)
            }
        );
        assert_eq!(
            verb("vertogw ctl undrain fs1"),
            Verb::Undrain { node: node() }
        );
        assert_eq!(
            verb("vertogw ctl switch acme --auto"),
            Verb::Switch {
                partition: "acme".into(),
                node: None,
                auto: true
            }
        );
        assert_eq!(
            verb("vertogw ctl sessions --partition acme --node fs1"),
            Verb::Sessions {
                partition: Some("acme".into()),
                node: Some(node())
            }
        );
        assert_eq!(
            verb("vertogw ctl kick s-1 --punt"),
            Verb::Kick {
                sessid: "s-1".into(),
                punt: true
            }
        );
        assert_eq!(
            verb("vertogw ctl route 1000@acme.test"),
            Verb::Route {
                login: "1000@acme.test".into()
            }
        );
        assert_eq!(verb("vertogw ctl reload"), Verb::Reload);
    }

    #[test]
    fn the_options_go_before_or_after_the_verb() {
        for line in [
            "vertogw ctl --admin http://127.0.0.1:1 --token-file t --config m.toml --json status",
            "vertogw ctl status --admin http://127.0.0.1:1 --token-file t --config m.toml --json",
        ] {
            let args = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(args.admin.as_deref(), Some("http://127.0.0.1:1"), "{line}");
            assert_eq!(args.token_file, Some(PathBuf::from("t")), "{line}");
            assert_eq!(args.config, Some(PathBuf::from("m.toml")), "{line}");
            assert!(args.json, "{line}");
        }
    }

    #[test]
    fn switch_wants_a_node_or_auto_but_not_both() {
        assert!(parse("vertogw ctl switch acme").is_err());
        assert!(parse("vertogw ctl switch acme fs1 --auto").is_err());
        assert!(parse("vertogw ctl").is_err());
    }

    #[test]
    fn an_api_error_exits_one_and_no_answer_exits_two() {
        let api = CtlError::Api(ApiError::Unauthorized { token_sent: false });
        assert_eq!(api.exit_code(), API_ERROR);
        let https = target::parse_url("https://x").err().map(CtlError::Target);
        assert_eq!(https.map(|e| e.exit_code()), Some(UNREACHABLE));
    }
}
