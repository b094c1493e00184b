//! `vertogw route`: show which partition and nodes a login would be sent to.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::exit;
use crate::config::Config;
use crate::routing::{Route, Router};

/// `--json` output for a routed login (field order is part of the contract).
#[derive(Serialize)]
struct Routed<'a> {
    login: &'a str,
    partition: &'a str,
    nodes: Vec<&'a str>,
}

/// `--json` output for a login no partition serves.
#[derive(Serialize)]
struct Unroutable<'a> {
    login: &'a str,
    error: String,
}

/// Routes `login` with the map at `path` (its certificate is not loaded): exit 0 when
/// routed, 2 when no partition serves it, 1 when the map does not load.
pub fn run(
    path: &Path,
    login: &str,
    json: bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let loaded = match Config::load_map(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            // A failing stderr leaves nowhere to report; the exit code still tells.
            let _ = writeln!(stderr, "{errors}");
            return exit::ERROR;
        }
    };
    let router = Router::new(Arc::new(loaded.config));
    let (code, written) = match (router.route(login), json) {
        (Ok(route), true) => (exit::OK, json_line(stdout, &routed(login, &route))),
        (Ok(route), false) => (exit::OK, human(stdout, login, &route)),
        (Err(e), true) => {
            let reply = Unroutable {
                login,
                error: e.to_string(),
            };
            (exit::NO, json_line(stdout, &reply))
        }
        (Err(e), false) => (exit::NO, writeln!(stderr, "not routed: {login:?}: {e}")),
    };
    match written {
        Ok(()) => code,
        Err(e) => {
            let _ = writeln!(stderr, "writing the result: {e}");
            exit::ERROR
        }
    }
}

fn routed<'a>(login: &'a str, route: &'a Route<'_>) -> Routed<'a> {
    Routed {
        login,
        partition: &route.partition.name,
        nodes: route.nodes.iter().map(|n| n.name.as_str()).collect(),
    }
}

fn json_line(out: &mut dyn Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)
}

fn human(out: &mut dyn Write, login: &str, route: &Route<'_>) -> std::io::Result<()> {
    writeln!(
        out,
        "{login} -> partition {:?} (user {}, domain {})",
        route.partition.name, route.user, route.domain
    )?;
    for (i, node) in route.nodes.iter().enumerate() {
        let role = if i == 0 { "active" } else { "standby" };
        writeln!(
            out,
            "  {}. {}  {}  {role}",
            i + 1,
            node.name,
            node.verto_url
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn demo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml")
    }

    fn route(path: &Path, login: &str, json: bool) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(path, login, json, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    #[test]
    fn json_for_a_routed_login_has_login_partition_and_nodes_in_order() {
        let (code, out, err) = route(&demo(), "1000@ACME.example.com", true);
        assert_eq!((code, err.as_str()), (0, ""));
        assert_eq!(out, "{\"login\":\"1000@ACME.example.com\",\"partition\":\"acme\",\"nodes\":[\"fs1\",\"fs3\"]}\n");
    }

    #[test]
    fn json_for_an_unroutable_login_has_the_error_and_exits_two() {
        let (code, out, _) = route(&demo(), "2500@example.com", true);
        assert_eq!(code, 2);
        assert_eq!(out, "{\"login\":\"2500@example.com\",\"error\":\"no partition of example.com serves user 2500\"}\n");
        let (code, out, _) = route(&demo(), "1000@globex.test", true);
        assert_eq!(code, 2);
        assert!(
            out.contains("\"error\":\"no partition serves domain globex.test\""),
            "{out}"
        );
    }

    #[test]
    fn human_output_lists_nodes_with_their_roles() {
        let (code, out, _) = route(&demo(), "support@eu.globex.test", false);
        assert_eq!(code, 0);
        assert_eq!(
            out,
            "support@eu.globex.test -> partition \"globex-support\" (user support, domain eu.globex.test)\n  \
             1. fs3  ws://127.0.0.1:18083  active\n  2. fs2  ws://127.0.0.1:18082  standby\n"
        );
        let (code, out, err) = route(&demo(), "1000@nowhere.test", false);
        assert_eq!((code, out.as_str()), (2, ""));
        assert_eq!(
            err,
            "not routed: \"1000@nowhere.test\": no partition serves domain nowhere.test\n"
        );
        let (code, _, err) = route(&demo(), "", false);
        assert_eq!(
            (code, err.as_str()),
            (2, "not routed: \"\": the login is empty\n")
        );
    }

    #[test]
    fn demo_logins_land_on_different_partitions() {
        let cases = [
            ("1000@acme.example.com", "acme"),
            ("1000@eu.globex.test", "globex"),
            ("7001@a.b.globex.test", "globex-support"),
            ("1500", "default"),
        ];
        for (login, want) in cases {
            let (code, out, err) = route(&demo(), login, true);
            assert_eq!(code, 0, "{login}: {err}");
            assert!(
                out.contains(&format!("\"partition\":\"{want}\"")),
                "{login}: {out}"
            );
        }
    }

    #[test]
    fn a_map_that_fails_to_load_exits_one_with_errors_on_stderr() {
        let (code, out, err) = route(Path::new("/nonexistent/m.toml"), "1000", true);
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(err.contains("cannot read the map"), "{err}");
        let path = std::env::temp_dir().join(format!("vertogw-route-{}.toml", std::process::id()));
        std::fs::write(&path, "[gateway]\nlisten = \"x\"\n").unwrap_or_else(|e| panic!("{e}"));
        let (code, _, err) = route(&path, "1000", false);
        let _ = std::fs::remove_file(&path);
        assert_eq!(code, 1);
        assert!(
            err.contains(":1: [gateway]: missing field `tls_cert`"),
            "{err}"
        );
    }
}
