//! mod_verto's `check_auth` and `check_permissions` for a `userauth` profile (pure).
//!
//! Credentials are read from the params of whatever method is called, exactly like
//! the real node: an `echo` carrying `login`/`passwd` authenticates the socket too.

use std::sync::Arc;

use super::json::Json;
use super::users::SimUsers;

/// Why a message did not pass the auth gate; each maps to one exact error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// No `params` member at all.
    MissingParams,
    /// `login` absent or empty (the jquery client's initial empty login).
    AuthRequired,
    /// `passwd` absent or empty.
    MissingPasswd,
    /// No id or no domain could be derived.
    ImproperCredentials,
    /// The directory has no such user (blind-reg off).
    LoginIncorrect,
    /// Wrong password.
    AuthFailure,
    /// The sessid is bound to a socket of another user (HEAD): the socket is dropped.
    SessionInUse,
}

impl AuthError {
    /// The JSON-RPC error code.
    pub(crate) fn code(self) -> i64 {
        match self {
            AuthError::AuthRequired => -32000,
            _ => -32001,
        }
    }

    /// The JSON-RPC error message, verbatim from mod_verto.
    pub(crate) fn message(self) -> &'static str {
        match self {
            AuthError::MissingParams => "Missing params",
            AuthError::AuthRequired => "Authentication Required",
            AuthError::MissingPasswd => "Missing passwd",
            AuthError::ImproperCredentials => "Missing or improper credentials",
            AuthError::LoginIncorrect => "Login Incorrect",
            AuthError::AuthFailure => "Authentication Failure",
            AuthError::SessionInUse => "Session in use",
        }
    }

    /// Whether this counts as a failed login attempt in the stats (credentials were
    /// offered and refused).
    pub(crate) fn is_failed_login(self) -> bool {
        !matches!(self, AuthError::AuthRequired | AuthError::MissingParams)
    }
}

/// Who a socket is once authenticated.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// `id@domain`.
    pub uid: String,
    /// The method allow-list (`login` is always allowed on top).
    pub allowed: Arc<[String]>,
}

/// Splits a login into (id, domain): chop at the first `@`; `force_domain` wins.
pub(crate) fn derive_id_domain<'a>(
    login: &'a str,
    force_domain: Option<&'a str>,
) -> Option<(&'a str, &'a str)> {
    let (id, domain) = match login.split_once('@') {
        Some((id, domain)) => (id, Some(domain)),
        None => (login, None),
    };
    let domain = force_domain.or(domain).filter(|d| !d.is_empty())?;
    (!id.is_empty()).then_some((id, domain))
}

/// Runs the auth checks on a request's `params`, in mod_verto's order.
pub(crate) fn check_auth(
    params: Option<&Json>,
    users: &SimUsers,
    force_domain: Option<&str>,
) -> Result<Identity, AuthError> {
    let params = params.ok_or(AuthError::MissingParams)?;
    let login = params
        .non_empty_str("login")
        .ok_or(AuthError::AuthRequired)?;
    let passwd = params
        .non_empty_str("passwd")
        .ok_or(AuthError::MissingPasswd)?;
    let (id, domain) =
        derive_id_domain(login, force_domain).ok_or(AuthError::ImproperCredentials)?;
    let account = users.lookup(id).ok_or(AuthError::LoginIncorrect)?;
    if !account.password_matches(passwd) {
        return Err(AuthError::AuthFailure);
    }
    Ok(Identity {
        uid: format!("{id}@{domain}"),
        allowed: account.allowed(),
    })
}

/// Whether an authenticated user may call `method`: exact entry, or the entry for the
/// part before the first `.` (`verto` allows every `verto.*`); `login` always.
pub(crate) fn permitted(allowed: &[String], method: &str) -> bool {
    if method == "login" || allowed.iter().any(|m| m == method) {
        return true;
    }
    match method.split_once('.') {
        Some((prefix, _)) => allowed.iter().any(|m| m == prefix),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(params: &str, force: Option<&str>) -> Result<Identity, AuthError> {
        let params = Json::parse(params.as_bytes());
        check_auth(params.as_ref(), &SimUsers::transcript_users(), force)
    }

    #[test]
    fn the_failure_matrix_matches_the_real_node() {
        assert_eq!(
            check_auth(None, &SimUsers::new(), None).unwrap_err(),
            AuthError::MissingParams
        );
        let cases = [
            (r#"{}"#, AuthError::AuthRequired),
            (r#"{"login":"","passwd":"1234"}"#, AuthError::AuthRequired),
            (r#"{"login":"1008@example.com"}"#, AuthError::MissingPasswd),
            (
                r#"{"login":"9999@example.com","passwd":"1234"}"#,
                AuthError::LoginIncorrect,
            ),
            (
                r#"{"login":"1008@example.com","passwd":"x"}"#,
                AuthError::AuthFailure,
            ),
            (
                r#"{"login":"1008","passwd":"1234"}"#,
                AuthError::ImproperCredentials,
            ),
            (
                r#"{"login":"@example.com","passwd":"1234"}"#,
                AuthError::ImproperCredentials,
            ),
        ];
        for (params, expected) in cases {
            assert_eq!(auth(params, None).unwrap_err(), expected, "{params}");
        }
    }

    #[test]
    fn force_domain_overrides_whatever_domain_the_login_names() {
        for login in ["1008", "1008@example.com", "1008@other.domain"] {
            let params = format!(r#"{{"login":"{login}","passwd":"1234"}}"#);
            let identity = auth(&params, Some("example.com")).unwrap();
            assert_eq!(identity.uid, "1008@example.com");
        }
    }

    #[test]
    fn the_login_is_chopped_at_the_first_at_sign() {
        assert_eq!(derive_id_domain("a@b@c", None), Some(("a", "b@c")));
    }

    #[test]
    fn a_prefix_entry_allows_the_whole_family() {
        let allowed: Vec<String> = vec!["verto".into()];
        assert!(permitted(&allowed, "verto.invite"));
        assert!(permitted(&allowed, "login"));
        assert!(!permitted(&allowed, "echo"));
        assert!(!permitted(&allowed, "fsapi"));
        assert!(!permitted(&[], "verto.ping"));
    }
}
