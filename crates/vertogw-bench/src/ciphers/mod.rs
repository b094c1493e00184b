//! `--mode ciphers`: what each cipher suite of the aws-lc-rs provider costs on this CPU,
//! measured in process (no sockets): record protection (seal + open) of a typical Verto
//! message and of a full record, the handshake's server and client CPU, the handshake
//! with each key exchange group (the post-quantum hybrid browsers offer first among
//! them), and which suite and group rustls' default client and the browsers' orders
//! negotiate with the gateway's config.
//!
//! Layout: this module (suites by name, settings and their bounds, the run's order);
//! `measure` (the mechanism: configs, in-memory handshakes, timed record loops);
//! `report` (the measurements turned into the JSON report and the human summary).

use std::str::FromStr;

use rustls::crypto::aws_lc_rs::cipher_suite as aws;
use rustls::crypto::aws_lc_rs::kx_group;
use rustls::crypto::SupportedKxGroup;
use rustls::SupportedCipherSuite;

mod measure;
mod report;

pub use report::{
    CipherReport, GroupReport, HandshakeReport, Negotiation, RecordReport, SizeWinner, SuiteReport,
};

use measure::{Endpoints, RecordMeasurement, SuiteMeasurement};

/// Plaintext bytes of a typical Verto message (an echo, a `verto.info`).
pub const MESSAGE_BYTES: usize = 200;

/// Plaintext bytes of a full TLS record (2^14).
pub const FULL_RECORD_BYTES: usize = 16_384;

/// Default records timed per suite for [`MESSAGE_BYTES`].
pub const DEFAULT_MESSAGE_ITERATIONS: u64 = 200_000;

/// Default records timed per suite for [`FULL_RECORD_BYTES`].
pub const DEFAULT_FULL_RECORD_ITERATIONS: u64 = 20_000;

/// Default full handshakes timed per suite.
pub const DEFAULT_HANDSHAKES: u32 = 500;

/// Most records one suite and size may time (bounds the run to minutes).
pub const MAX_ITERATIONS: u64 = 10_000_000;

/// Most handshakes one suite may time.
pub const MAX_HANDSHAKES: u32 = 100_000;

/// The name every certificate and client in this mode uses.
pub const SERVER_NAME: &str = "localhost";

/// A cipher suite of the aws-lc-rs provider this mode can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Suite {
    /// TLS 1.3 AES-128-GCM with SHA-256.
    Aes128Gcm,
    /// TLS 1.3 AES-256-GCM with SHA-384.
    Aes256Gcm,
    /// TLS 1.3 ChaCha20-Poly1305 with SHA-256.
    Chacha20Poly1305,
    /// TLS 1.2 ECDHE-ECDSA AES-128-GCM with SHA-256 (for comparison).
    Tls12EcdsaAes128Gcm,
}

impl Suite {
    /// Every suite, in the order they are measured and reported.
    pub const ALL: [Suite; 4] = [
        Suite::Aes128Gcm,
        Suite::Aes256Gcm,
        Suite::Chacha20Poly1305,
        Suite::Tls12EcdsaAes128Gcm,
    ];

    /// The suite's IANA name as rustls spells it (on the command line and in the report).
    pub fn name(self) -> &'static str {
        match self {
            Suite::Aes128Gcm => "TLS13_AES_128_GCM_SHA256",
            Suite::Aes256Gcm => "TLS13_AES_256_GCM_SHA384",
            Suite::Chacha20Poly1305 => "TLS13_CHACHA20_POLY1305_SHA256",
            Suite::Tls12EcdsaAes128Gcm => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        }
    }

    /// A short name accepted on the command line as well.
    pub fn alias(self) -> &'static str {
        match self {
            Suite::Aes128Gcm => "aes128",
            Suite::Aes256Gcm => "aes256",
            Suite::Chacha20Poly1305 => "chacha20",
            Suite::Tls12EcdsaAes128Gcm => "tls12-aes128",
        }
    }

    /// The names accepted for the suite, upper case: rustls' name, the alias and, for
    /// TLS 1.3, the RFC 8446 / OpenSSL name (`TLS_AES_128_GCM_SHA256`) and the bare one.
    pub fn spellings(self) -> Vec<String> {
        let mut names = vec![self.name().to_owned(), self.alias().to_ascii_uppercase()];
        if let Some(bare) = self.name().strip_prefix("TLS13_") {
            names.push(format!("TLS_{bare}"));
            names.push(bare.to_owned());
        }
        names
    }

    /// Whether the suite is a TLS 1.3 one (the only ones a server orders for browsers).
    pub fn is_tls13(self) -> bool {
        self != Suite::Tls12EcdsaAes128Gcm
    }

    /// The provider's implementation.
    pub fn supported(self) -> SupportedCipherSuite {
        match self {
            Suite::Aes128Gcm => aws::TLS13_AES_128_GCM_SHA256,
            Suite::Aes256Gcm => aws::TLS13_AES_256_GCM_SHA384,
            Suite::Chacha20Poly1305 => aws::TLS13_CHACHA20_POLY1305_SHA256,
            Suite::Tls12EcdsaAes128Gcm => aws::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        }
    }

    /// The suite rustls negotiated, when it is one of ours.
    pub fn of(negotiated: SupportedCipherSuite) -> Option<Suite> {
        Suite::ALL
            .into_iter()
            .find(|s| s.supported().suite() == negotiated.suite())
    }
}

/// A key exchange group whose handshakes this mode times, with AES-128-GCM (the suite
/// browsers negotiate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// X25519: what the load generator offers first, and all OpenSSL 3.0 supports.
    X25519,
    /// The post-quantum hybrid current browsers offer first (X25519 and ML-KEM-768).
    X25519Mlkem768,
    /// NIST P-256.
    Secp256r1,
}

impl Group {
    /// Every group, in the order they are measured and reported.
    pub const ALL: [Group; 3] = [Group::X25519, Group::X25519Mlkem768, Group::Secp256r1];

    /// The group's name as rustls prints it.
    pub fn name(self) -> &'static str {
        match self {
            Group::X25519 => "X25519",
            Group::X25519Mlkem768 => "X25519MLKEM768",
            Group::Secp256r1 => "secp256r1",
        }
    }

    /// The provider's implementation.
    pub fn supported(self) -> &'static dyn SupportedKxGroup {
        match self {
            Group::X25519 => kx_group::X25519,
            Group::X25519Mlkem768 => kx_group::X25519MLKEM768,
            Group::Secp256r1 => kx_group::SECP256R1,
        }
    }
}

impl FromStr for Suite {
    type Err = String;

    /// Any of the suite's [`Suite::spellings`], in any case.
    fn from_str(s: &str) -> Result<Suite, String> {
        let wanted = s.trim().to_ascii_uppercase();
        Suite::ALL
            .into_iter()
            .find(|suite| suite.spellings().contains(&wanted))
            .ok_or_else(|| {
                let names: Vec<String> = Suite::ALL
                    .iter()
                    .map(|s| format!("{} ({})", s.name(), s.alias()))
                    .collect();
                format!("unknown cipher suite {s:?}: {}", names.join(", "))
            })
    }
}

/// What `--mode ciphers` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherConfig {
    /// Suites to measure, in report order (default: [`Suite::ALL`]).
    pub suites: Vec<Suite>,
    /// Records timed per suite and size; `None`: [`DEFAULT_MESSAGE_ITERATIONS`] for
    /// [`MESSAGE_BYTES`], [`DEFAULT_FULL_RECORD_ITERATIONS`] for [`FULL_RECORD_BYTES`].
    pub iterations: Option<u64>,
    /// Full handshakes timed per suite.
    pub handshakes: u32,
}

impl Default for CipherConfig {
    fn default() -> CipherConfig {
        CipherConfig {
            suites: Suite::ALL.to_vec(),
            iterations: None,
            handshakes: DEFAULT_HANDSHAKES,
        }
    }
}

impl CipherConfig {
    /// Checks every bound; the error says which option to change.
    pub fn validate(&self) -> Result<(), CipherError> {
        let bad = |m: String| Err(CipherError::Invalid(m));
        if self.suites.is_empty() {
            return bad("--suite: name at least one cipher suite".into());
        }
        let mut sorted = self.suites.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.suites.len() {
            return bad("--suite: each cipher suite at most once".into());
        }
        if let Some(n) = self.iterations {
            if !(1..=MAX_ITERATIONS).contains(&n) {
                return bad(format!("--iterations must be 1..={MAX_ITERATIONS}"));
            }
        }
        if !(1..=MAX_HANDSHAKES).contains(&self.handshakes) {
            return bad(format!("--handshakes must be 1..={MAX_HANDSHAKES}"));
        }
        Ok(())
    }

    /// The record sizes measured and how many records each times.
    pub fn plan(&self) -> [(usize, u64); 2] {
        [
            (
                MESSAGE_BYTES,
                self.iterations.unwrap_or(DEFAULT_MESSAGE_ITERATIONS),
            ),
            (
                FULL_RECORD_BYTES,
                self.iterations.unwrap_or(DEFAULT_FULL_RECORD_ITERATIONS),
            ),
        ]
    }
}

/// Why the cipher measurement could not run.
#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    /// A setting is out of bounds.
    #[error("{0}")]
    Invalid(String),
    /// The certificate could not be made or loaded.
    #[error(transparent)]
    Certificate(#[from] vertogw_net::tls::TlsError),
    /// rustls refused a config or a message.
    #[error("{what}: {source}")]
    Rustls {
        /// The step that failed.
        what: String,
        /// rustls' error.
        source: rustls::Error,
    },
    /// Moving bytes between the two in-memory ends failed.
    #[error("{what}: {source}")]
    Io {
        /// The step that failed.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The in-memory exchange did not go as TLS says it must.
    #[error("{0}")]
    Protocol(String),
}

/// Measures every configured suite, one after the other, and assembles the report.
pub fn run(config: &CipherConfig) -> Result<CipherReport, CipherError> {
    config.validate()?;
    let cert = vertogw_net::tls::self_signed(&[SERVER_NAME])?;
    let mut measured = Vec::with_capacity(config.suites.len());
    for &suite in &config.suites {
        tracing::info!(suite = suite.name(), "ciphers: measuring");
        measured.push(measure_suite(suite, &cert, config)?);
    }
    let mut groups = Vec::with_capacity(Group::ALL.len());
    for group in Group::ALL {
        tracing::info!(group = group.name(), "ciphers: measuring");
        let ends = Endpoints::with_group(group, &cert)?;
        let measured = measure::handshakes(&ends, config.handshakes)?;
        if measured.kx_group != group.name() {
            return Err(CipherError::Protocol(format!(
                "a client offering only {} negotiated {}",
                group.name(),
                measured.kx_group
            )));
        }
        groups.push((group, measured));
    }
    let negotiations = measure::negotiations(&cert)?;
    Ok(CipherReport::new(
        measured,
        groups,
        negotiations,
        cpu_model(),
        aes_hw(),
    ))
}

fn measure_suite(
    suite: Suite,
    cert: &vertogw_net::tls::SelfSigned,
    config: &CipherConfig,
) -> Result<SuiteMeasurement, CipherError> {
    let ends = Endpoints::new(suite, cert)?;
    let handshakes = measure::handshakes(&ends, config.handshakes)?;
    let records = config
        .plan()
        .into_iter()
        .map(|(bytes, n)| measure::records(&ends, bytes, n))
        .collect::<Result<Vec<RecordMeasurement>, _>>()?;
    Ok(SuiteMeasurement {
        suite,
        handshakes,
        records,
    })
}

/// The CPU's model name from `/proc/cpuinfo`, when readable.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, name)| name.trim().to_owned())
}

/// Whether the CPU has AES and carry-less multiply instructions (what AES-GCM needs to
/// be fast); `None` off x86-64.
#[cfg(target_arch = "x86_64")]
fn aes_hw() -> Option<bool> {
    Some(
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq"),
    )
}

#[cfg(not(target_arch = "x86_64"))]
fn aes_hw() -> Option<bool> {
    None
}

#[cfg(test)]
mod tests;
