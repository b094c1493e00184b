//! Helpers shared by unit tests.

/// Compares `got` with `tests/golden/<name>`; `VERTOGW_BLESS=1` rewrites the file first.
pub(crate) fn golden(name: &str, got: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("VERTOGW_BLESS").is_some() {
        std::fs::write(&path, got).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(got, want, "{path} differs (VERTOGW_BLESS=1 rewrites it)");
}
