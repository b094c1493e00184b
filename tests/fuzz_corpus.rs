//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and the regression inputs
//! (`fuzz/regressions/<target>/`) through the same functions the cargo-fuzz targets call,
//! on stable Rust, so every input the fuzzer ever kept is checked on each test run.
//!
//! A regression file named `open-*` is a finding not fixed yet: it must still fail, and
//! once it passes this test says so, so the fix is noticed and the file renamed (drop
//! `open-`) to guard it from then on.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use vertogw::fuzzing;

/// A fuzz target's entry point.
type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("login_reader", fuzzing::login_reader),
    ("prelogin", fuzzing::prelogin),
    ("map_parser", fuzzing::map_parser),
    ("upgrade_request", fuzzing::upgrade_request),
    ("ws_frames", fuzzing::ws_frames),
    ("proxy_header", fuzzing::proxy_header),
];

/// Prefix of a regression input whose finding is still open.
const OPEN: &str = "open-";

/// The files directly in `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn is_open(file: &Path) -> bool {
    file.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(OPEN))
}

/// Whether `target` passes on the file's bytes (a panic is a failure).
fn passes(target: Target, file: &Path) -> bool {
    let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    panic::catch_unwind(AssertUnwindSafe(|| target(&data))).is_ok()
}

#[test]
fn every_corpus_and_regression_input_passes_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failed = Vec::new();
    let mut open = Vec::new();
    for (name, target) in TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name}/ has no inputs: the replay would test nothing"
        );
        let regressions = inputs(&fuzz.join("regressions").join(name));
        let (known, guarded): (Vec<PathBuf>, Vec<PathBuf>) =
            regressions.into_iter().partition(|f| is_open(f));
        for file in corpus.iter().chain(&guarded) {
            if !passes(target, file) {
                failed.push(file.display().to_string());
            }
        }
        open.extend(known.into_iter().map(|f| (target, f)));
    }
    // Open findings are expected to panic: keep their messages out of the output.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let fixed: Vec<String> = open
        .iter()
        .filter(|(target, file)| passes(*target, file))
        .map(|(_, file)| file.display().to_string())
        .collect();
    panic::set_hook(hook);
    assert!(
        failed.is_empty(),
        "inputs that fail (their panic messages are above):\n{}",
        failed.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "open findings that pass now: rename each without its {OPEN:?} prefix so it \
         guards the fix:\n{}",
        fixed.join("\n")
    );
}
