//! `vertogw check`: validate a map (certificate and key included) and summarise it.

use std::io::{self, Write};
use std::path::Path;

use super::exit;
use crate::config::{Config, ExtensionRule, Failback};
use crate::tls::Certificates;

/// Validates the map at `path`: every error to `stderr` and exit 1; otherwise warnings
/// to `stderr`, a summary table to `stdout` and exit 0.
pub fn run(path: &Path, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    match Config::load(path) {
        Err(errors) => {
            let n = errors.errors.len();
            let plural = if n == 1 { "" } else { "s" };
            // A failing stderr leaves nowhere to report; the exit code still tells.
            let _ = writeln!(stderr, "{errors}\n{}: {n} error{plural}", path.display());
            exit::ERROR
        }
        Ok(loaded) => {
            for warning in &loaded.warnings {
                let _ = writeln!(stderr, "warning: {warning}");
            }
            if loaded.config.gateway.public_url.is_none() {
                let _ = writeln!(
                    stderr,
                    "warning: {}: [gateway] public_url is not set: client configs and \
                     /verto-config give browsers {}, derived from listen; set the wss:// URL \
                     browsers reach the gateway at (the load balancer's name) in production",
                    path.display(),
                    loaded.config.public_url()
                );
            }
            match summary(&loaded.config, loaded.certificates.as_ref(), stdout) {
                Ok(()) => exit::OK,
                Err(e) => {
                    let _ = writeln!(stderr, "writing the summary: {e}");
                    exit::ERROR
                }
            }
        }
    }
}

fn summary(
    config: &Config,
    certificates: Option<&Certificates>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let (nodes, partitions) = (config.nodes.len(), config.partitions.len());
    let source = config.source.display();
    writeln!(out, "{source}: OK ({nodes} nodes, {partitions} partitions)")?;
    write_table(out, settings_rows(config))?;
    writeln!(out)?;
    if let Some(certificates) = certificates {
        write_table(out, certificate_rows(certificates))?;
        writeln!(out)?;
    }
    write_table(out, node_rows(config))?;
    writeln!(out)?;
    write_table(out, partition_rows(config))
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn settings_rows(config: &Config) -> impl Iterator<Item = Vec<String>> {
    let gw = &config.gateway;
    let default_domain = gw.default_domain.as_deref();
    let rows = [
        row(["listen", &gw.listen.to_string()]),
        row([
            "default domain",
            default_domain.unwrap_or("none (logins need @domain)"),
        ]),
        row([
            "login timeout",
            &format!("{} ms", gw.login_timeout.as_millis()),
        ]),
        row([
            "connect timeout",
            &format!("{} ms", gw.connect_timeout.as_millis()),
        ]),
        row(["max message", &format!("{} bytes", gw.max_message_bytes)]),
        row(["public url", &public_url(config)]),
        row(["health", &health(config)]),
    ];
    rows.into_iter()
}

fn public_url(config: &Config) -> String {
    match &config.gateway.public_url {
        Some(url) => url.raw.clone(),
        None => format!("{} (derived from listen)", config.public_url()),
    }
}

fn health(config: &Config) -> String {
    let h = &config.health;
    format!(
        "probe every {} ms (timeout {} ms), up after {}, down after {}; failback after {} ms",
        h.interval.as_millis(),
        h.timeout.as_millis(),
        h.rise,
        h.fall,
        h.failback_delay.as_millis()
    )
}

fn certificate_rows(certificates: &Certificates) -> impl Iterator<Item = Vec<String>> + '_ {
    let rows = certificates.all().map(|(_, cert)| {
        let names = match cert.names.is_empty() {
            true => "(default: no or another name)".to_owned(),
            false => cert.names.join(", "),
        };
        let file = cert.cert_file.display().to_string();
        vec![names, cert.info.not_after_date.clone(), file]
    });
    std::iter::once(row(["CERTIFICATE FOR", "EXPIRES", "FILE"])).chain(rows)
}

fn node_rows(config: &Config) -> impl Iterator<Item = Vec<String>> + '_ {
    let nodes = config.nodes.iter().map(|n| {
        let ip = n.media_ip().map_or("-".to_owned(), |ip| ip.to_string());
        let rtp = match n.rtp_ports {
            None if n.rtp_ip.is_none() => "-".to_owned(),
            None => ip,
            Some(p) => format!("{ip} {p} ({} ports)", p.len()),
        };
        vec![n.name.clone(), n.verto_url.to_string(), rtp]
    });
    std::iter::once(row(["NODE", "VERTO URL", "RTP"])).chain(nodes)
}

fn partition_rows(config: &Config) -> impl Iterator<Item = Vec<String>> + '_ {
    let partitions = config.partitions.iter().map(|p| {
        let domains: Vec<String> = p.domains.iter().map(ToString::to_string).collect();
        let nodes = p.nodes.join(", ");
        let extensions = extensions(p.extensions.as_deref());
        let failback = match p.failback {
            Failback::Auto => "auto",
            Failback::Manual => "manual",
        };
        vec![
            p.name.clone(),
            nodes,
            domains.join(", "),
            extensions,
            failback.to_owned(),
        ]
    });
    let header = row([
        "PARTITION",
        "NODES (active first)",
        "DOMAINS",
        "EXTENSIONS",
        "FAILBACK",
    ]);
    std::iter::once(header).chain(partitions)
}

fn extensions(rules: Option<&[ExtensionRule]>) -> String {
    match rules {
        None => "(every user)".to_owned(),
        Some(rules) => rules
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Writes rows as left-aligned columns two spaces apart, without trailing spaces.
fn write_table(out: &mut dyn Write, rows: impl Iterator<Item = Vec<String>>) -> io::Result<()> {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(max) => *max = (*max).max(w),
                None => widths.push(w),
            }
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                let width = widths.get(i).copied().unwrap_or(0);
                line.push_str(&format!("{cell:<width$}  "));
            } else {
                line.push_str(cell);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A directory holding a map `m.toml` (with `body` after a valid gateway) and a
    /// self-signed certificate it points at.
    fn map_dir(name: &str, gateway_extra: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vertogw-check-{}-{name}", std::process::id()));
        let write = |file: &str, text: &str| {
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(file), text))
        };
        let ss = vertogw_net::tls::self_signed(&["localhost"]).unwrap_or_else(|e| panic!("{e}"));
        let map = format!(
            "[gateway]\nlisten = \"127.0.0.1:8443\"\ntls_cert = \"gw.crt\"\ntls_key = \"gw.key\"\nallowed_origins = [\"*\"]\npublic_url = \"wss://gw.example.test/\"\n{gateway_extra}{body}"
        );
        for (file, text) in [
            ("gw.crt", ss.cert_pem.as_str()),
            ("gw.key", &ss.key_pem),
            ("m.toml", &map),
        ] {
            write(file, text).unwrap_or_else(|e| panic!("{e}"));
        }
        dir
    }

    fn check(dir: &Path) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&dir.join("m.toml"), &mut out, &mut err);
        let _ = std::fs::remove_dir_all(dir);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    const BODY: &str = r#"
[[node]]
name = "fs1"
verto_url = "ws://192.0.2.11:8081"
rtp_ip = "192.0.2.11"
rtp_ports = "10000-10399"
[[node]]
name = "fs2"
verto_url = "wss://fs2.example.net"
[[partition]]
name = "acme"
nodes = ["fs1", "fs2"]
domains = ["acme.example.com", "*.acme.test"]
extensions = ["1000-1999", "alice"]
[[partition]]
name = "rest"
nodes = ["fs2"]
domains = ["*"]
"#;

    #[test]
    fn valid_map_prints_a_summary_table_and_exits_zero() {
        let (code, out, err) = check(&map_dir("ok", "", BODY));
        assert_eq!((code, err.as_str()), (0, ""), "{out}");
        assert!(out.contains("m.toml: OK (2 nodes, 2 partitions)"), "{out}");
        assert!(out.contains("listen           127.0.0.1:8443\n"), "{out}");
        assert!(
            out.contains("public url       wss://gw.example.test/\n"),
            "{out}"
        );
        assert!(
            out.contains("health           probe every 1000 ms (timeout 1000 ms), up after 2, down after 3; failback after 30000 ms\n"),
            "{out}"
        );
        assert!(
            out.contains("fs1   ws://192.0.2.11:8081   192.0.2.11 10000-10399 (400 ports)\n"),
            "{out}"
        );
        assert!(out.contains("fs2   wss://fs2.example.net  -\n"), "{out}");
        assert!(
            out.contains("acme       fs1, fs2              acme.example.com, *.acme.test  1000-1999, alice  auto\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "rest       fs2                   *                              (every user)      auto\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn the_summary_lists_every_certificate_with_its_names_and_expiry() {
        let entry = "[[gateway.certificate]]\nnames = [\"a.example.test\", \"*.other.test\"]\ncert = \"a.crt\"\nkey = \"a.key\"\n";
        let dir = map_dir("certs", entry, BODY);
        // 2030-03-17: far enough for no expiry warning.
        let until = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_900_000_000);
        let ss = vertogw_net::tls::self_signed_until(&["a.example.test", "*.other.test"], until)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("a.crt"), &ss.cert_pem).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("a.key"), &ss.key_pem).unwrap_or_else(|e| panic!("{e}"));
        let gw_crt = dir.join("gw.crt").display().to_string();
        let a_crt = dir.join("a.crt").display().to_string();
        let (code, out, err) = check(&dir);
        assert_eq!((code, err.as_str()), (0, ""), "{out}");
        let header = out.lines().find(|l| l.starts_with("CERTIFICATE FOR"));
        assert_eq!(
            header,
            Some("CERTIFICATE FOR                EXPIRES     FILE"),
            "{out}"
        );
        let default = out.lines().find(|l| l.starts_with("(default"));
        assert!(
            default.is_some_and(
                |l| l.starts_with("(default: no or another name)  ") && l.ends_with(&gw_crt)
            ),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "a.example.test, *.other.test   2030-03-17  {a_crt}\n"
            )),
            "{out}"
        );
    }

    #[test]
    fn the_rtp_address_shown_is_the_verto_host_when_rtp_ip_is_left_out() {
        let body = BODY.replace("rtp_ip = \"192.0.2.11\"\n", "");
        let (code, out, err) = check(&map_dir("rtp-default", "", &body));
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("fs1   ws://192.0.2.11:8081   192.0.2.11 10000-10399 (400 ports)\n"),
            "{out}"
        );
    }

    #[test]
    fn a_map_without_partitions_passes_with_a_warning() {
        let body = &BODY[..BODY.find("[[partition]]").unwrap_or(BODY.len())];
        let (code, out, err) = check(&map_dir("empty", "", body));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("OK (2 nodes, 0 partitions)"), "{out}");
        assert!(
            err.starts_with("warning: ")
                && err.contains("no [[partition]]: every login will be refused"),
            "{err}"
        );
    }

    #[test]
    fn warnings_go_to_stderr_and_still_exit_zero() {
        let (code, out, err) = check(&map_dir("warn", "max_message_bytes = 2000000\n", BODY));
        assert_eq!(code, 0, "{err}");
        assert!(
            err.starts_with("warning: ")
                && err.contains("m.toml:7: [gateway]: max_message_bytes = 2000000"),
            "{err}"
        );
        assert!(out.contains("max message      2000000 bytes"), "{out}");
    }

    #[test]
    fn every_error_goes_to_stderr_with_a_count_and_exit_one() {
        let body = BODY
            .replace("\"fs2\"]\ndomains = [\"*\"]", "\"fs9\"]\ndomains = [\"*\"]")
            .replace("10000-10399", "10399-10000");
        let dir = map_dir("errors", "", &body).join("gw.key");
        std::fs::write(&dir, "not a key").unwrap_or_else(|e| panic!("{e}"));
        let (code, out, err) = check(dir.parent().unwrap_or(Path::new(".")));
        assert_eq!((code, out.as_str()), (1, ""));
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 4, "{err}");
        assert!(
            lines[0].contains(":3: [gateway]: tls_cert/tls_key:"),
            "{err}"
        );
        assert!(
            lines[1].contains(":12: node \"fs1\": rtp_ports \"10399-10000\": it is reversed"),
            "{err}"
        );
        assert!(
            lines[2].contains(":23: partition \"rest\": node \"fs9\" is not defined"),
            "{err}"
        );
        assert!(lines[3].ends_with("m.toml: 3 errors"), "{err}");
    }

    #[test]
    fn a_map_without_public_url_is_warned_with_the_derived_address() {
        let dir = map_dir("nopublic", "", BODY);
        let map = dir.join("m.toml");
        let text = std::fs::read_to_string(&map).unwrap_or_else(|e| panic!("{e}"));
        let without = text.replace("public_url = \"wss://gw.example.test/\"\n", "");
        std::fs::write(&map, without).unwrap_or_else(|e| panic!("{e}"));
        let (code, _, err) = check(&dir);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("public_url is not set")
                && err.contains("wss://127.0.0.1:8443/")
                && err.contains("in production"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_map_is_an_error() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(Path::new("/nonexistent/m.toml"), &mut out, &mut err);
        let err = String::from_utf8_lossy(&err);
        assert_eq!(code, 1);
        assert!(
            err.starts_with("/nonexistent/m.toml: cannot read the map:"),
            "{err}"
        );
    }
}
