//! The map's small value syntaxes: port ranges, domain patterns and extension rules.

use std::fmt;
use std::str::FromStr;

use super::error::{ConfigErrorKind, PatternError, RangeError};
use super::types::{DomainPattern, ExtensionRule, PortRange};

/// `N-M` with at least one ASCII digit on each side, else `None`.
fn digit_pair(s: &str) -> Option<(&str, &str)> {
    let (a, b) = s.split_once('-')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
    (digits(a) && digits(b)).then_some((a, b))
}

/// The numeric value of an all-digit user; `None` for other users and for values too
/// large for `u64` (such users fall in no range).
pub(crate) fn user_number(user: &str) -> Option<u64> {
    if user.is_empty() || !user.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    user.parse().ok()
}

impl PortRange {
    /// How many ports the range holds (at least 1 once validated).
    pub fn len(&self) -> u32 {
        (u32::from(self.end) + 1).saturating_sub(u32::from(self.start))
    }

    /// True only for a hand-built range with `end < start`; parsed ranges are never empty.
    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }

    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }

    /// Whether the two ranges share at least one port.
    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

impl FromStr for PortRange {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<PortRange, RangeError> {
        let (a, b) = digit_pair(s).ok_or(RangeError::Format)?;
        // Only overflow can fail here: both sides are all digits.
        let port = |x: &str| {
            x.parse::<u16>()
                .map_err(|_| RangeError::TooLarge(x.to_owned()))
        };
        let (start, end) = (port(a)?, port(b)?);
        if start == 0 {
            return Err(RangeError::PortZero);
        }
        if start > end {
            return Err(RangeError::Reversed);
        }
        Ok(PortRange { start, end })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// Lower-cases and checks a plain domain name (no wildcard).
pub(super) fn domain_name(s: &str) -> Result<String, PatternError> {
    if s.is_empty() {
        return Err(PatternError::Empty);
    }
    if s.contains('*') {
        return Err(PatternError::Wildcard);
    }
    let label_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
    let ok = s
        .split('.')
        .all(|label| !label.is_empty() && label.chars().all(label_char));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(PatternError::BadDomain)
    }
}

impl DomainPattern {
    /// Whether a lower-cased login domain matches; `*.x` matches subdomains of `x` only.
    pub fn matches(&self, domain: &str) -> bool {
        match self {
            DomainPattern::Exact(name) => name == domain,
            DomainPattern::Suffix(suffix) => domain
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            DomainPattern::Any => true,
        }
    }
}

impl FromStr for DomainPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<DomainPattern, PatternError> {
        if s == "*" {
            return Ok(DomainPattern::Any);
        }
        match s.strip_prefix("*.") {
            Some(suffix) => domain_name(suffix).map(DomainPattern::Suffix),
            None => domain_name(s).map(DomainPattern::Exact),
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Exact(name) => f.write_str(name),
            DomainPattern::Suffix(suffix) => write!(f, "*.{suffix}"),
            DomainPattern::Any => f.write_str("*"),
        }
    }
}

impl ExtensionRule {
    /// Whether this rule admits `user` (ranges admit all-digit users by numeric value).
    pub fn matches(&self, user: &str) -> bool {
        self.matches_number(user, user_number(user))
    }

    /// [`Self::matches`] with the user's numeric value computed once by the caller.
    pub(crate) fn matches_number(&self, user: &str, number: Option<u64>) -> bool {
        match self {
            ExtensionRule::Range { start, end } => {
                number.is_some_and(|n| (*start..=*end).contains(&n))
            }
            ExtensionRule::Exact(name) => name == user,
        }
    }

    /// Whether some user is admitted by both rules.
    pub(crate) fn overlaps(&self, other: &ExtensionRule) -> bool {
        match (self, other) {
            (ExtensionRule::Range { start, end }, ExtensionRule::Range { start: s2, end: e2 }) => {
                start <= e2 && s2 <= end
            }
            (ExtensionRule::Exact(name), rule) | (rule, ExtensionRule::Exact(name)) => {
                rule.matches(name)
            }
        }
    }
}

impl FromStr for ExtensionRule {
    type Err = ConfigErrorKind;

    fn from_str(s: &str) -> Result<ExtensionRule, ConfigErrorKind> {
        let bad_range = |reason| ConfigErrorKind::BadRange {
            key: "extensions",
            value: s.to_owned(),
            reason,
        };
        if let Some((a, b)) = digit_pair(s) {
            let number = |x: &str| {
                x.parse::<u64>()
                    .map_err(|_| bad_range(RangeError::TooLarge(x.to_owned())))
            };
            let (start, end) = (number(a)?, number(b)?);
            if start > end {
                return Err(bad_range(RangeError::Reversed));
            }
            return Ok(ExtensionRule::Range { start, end });
        }
        let bad_name = |reason| ConfigErrorKind::BadExtension {
            value: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(bad_name(PatternError::Empty));
        }
        if s.chars()
            .any(|c| c == '@' || c.is_whitespace() || c.is_control())
        {
            return Err(bad_name(PatternError::BadUser));
        }
        if s.contains('-') && s.chars().all(|c| c == '-' || c.is_ascii_digit()) {
            return Err(bad_name(PatternError::HalfRange));
        }
        Ok(ExtensionRule::Exact(s.to_owned()))
    }
}

impl fmt::Display for ExtensionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtensionRule::Range { start, end } => write!(f, "{start}-{end}"),
            ExtensionRule::Exact(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(s: &str) -> ExtensionRule {
        s.parse().unwrap()
    }

    #[test]
    fn port_ranges_parse_and_count_inclusively() {
        let r: PortRange = "10000-10399".parse().unwrap();
        assert_eq!(
            (r.start, r.end, r.len(), r.is_empty()),
            (10000, 10399, 400, false)
        );
        assert_eq!("5-5".parse::<PortRange>().map(|r| r.len()), Ok(1));
        assert!(r.contains(10399) && !r.contains(10400));
        assert_eq!(r.to_string(), "10000-10399");
    }

    #[test]
    fn bad_port_ranges_say_why() {
        assert_eq!(
            "10399-10000".parse::<PortRange>(),
            Err(RangeError::Reversed)
        );
        assert_eq!("0-10".parse::<PortRange>(), Err(RangeError::PortZero));
        assert_eq!(
            "1-65536".parse::<PortRange>(),
            Err(RangeError::TooLarge("65536".into()))
        );
        for bad in ["", "10000", "10000-", "a-b", " 1-2", "1-2-3", "+1-2"] {
            assert_eq!(bad.parse::<PortRange>(), Err(RangeError::Format), "{bad:?}");
        }
    }

    #[test]
    fn port_ranges_overlap_when_they_share_a_port() {
        let a: PortRange = "10000-10399".parse().unwrap();
        let b: PortRange = "10399-10500".parse().unwrap();
        let c: PortRange = "10400-10500".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c) && !c.overlaps(&a));
    }

    #[test]
    fn domain_patterns_are_lower_cased_and_classified() {
        assert_eq!("*".parse(), Ok(DomainPattern::Any));
        assert_eq!(
            "*.Example.COM".parse(),
            Ok(DomainPattern::Suffix("example.com".into()))
        );
        assert_eq!(
            "Acme.Example.com".parse(),
            Ok(DomainPattern::Exact("acme.example.com".into()))
        );
        assert_eq!(
            "a.*.com".parse::<DomainPattern>(),
            Err(PatternError::Wildcard)
        );
        assert_eq!("*.".parse::<DomainPattern>(), Err(PatternError::Empty));
        assert_eq!("".parse::<DomainPattern>(), Err(PatternError::Empty));
        for bad in ["a..b", ".a", "a b", "a@b", "ä.com"] {
            assert_eq!(
                bad.parse::<DomainPattern>(),
                Err(PatternError::BadDomain),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn suffix_pattern_matches_subdomains_but_not_the_suffix_itself() {
        let p = DomainPattern::Suffix("example.com".into());
        assert!(p.matches("a.example.com") && p.matches("b.a.example.com"));
        assert!(
            !p.matches("example.com") && !p.matches("badexample.com") && !p.matches(".example.com")
        );
    }

    #[test]
    fn extension_entries_are_ranges_or_exact_names() {
        assert_eq!(
            ext("1000-1999"),
            ExtensionRule::Range {
                start: 1000,
                end: 1999
            }
        );
        assert_eq!(ext("2500"), ExtensionRule::Exact("2500".into()));
        assert_eq!(ext("front-desk"), ExtensionRule::Exact("front-desk".into()));
        assert!(ext("1000-1999").matches("1500") && ext("1000-1999").matches("01500"));
        assert!(!ext("1000-1999").matches("2000") && !ext("1000-1999").matches("15x"));
        assert!(ext("Alice").matches("Alice") && !ext("Alice").matches("alice"));
    }

    #[test]
    fn huge_numeric_user_is_in_no_range_and_does_not_panic() {
        let huge = "9".repeat(400);
        assert_eq!(user_number(&huge), None);
        assert!(!ext("0-18446744073709551615").matches(&huge));
        assert!(ext(&huge).matches(&huge));
    }

    #[test]
    fn bad_extension_entries_are_refused() {
        let range_err = |s: &str| match s.parse::<ExtensionRule>() {
            Err(ConfigErrorKind::BadRange { reason, .. }) => reason,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(range_err("1999-1000"), RangeError::Reversed);
        assert_eq!(
            range_err("1-99999999999999999999"),
            RangeError::TooLarge("99999999999999999999".into())
        );
        for (bad, want) in [
            ("", PatternError::Empty),
            ("a@b", PatternError::BadUser),
            ("al ice", PatternError::BadUser),
            ("1000-", PatternError::HalfRange),
            ("-5", PatternError::HalfRange),
            ("1-2-3", PatternError::HalfRange),
        ] {
            match bad.parse::<ExtensionRule>() {
                Err(ConfigErrorKind::BadExtension { reason, .. }) => {
                    assert_eq!(reason, want, "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn extension_overlap_covers_ranges_numeric_names_and_equal_names() {
        assert!(ext("1000-1999").overlaps(&ext("1999-2999")));
        assert!(!ext("1000-1999").overlaps(&ext("2000-2999")));
        assert!(ext("2500").overlaps(&ext("2000-2999")) && ext("2000-2999").overlaps(&ext("2500")));
        assert!(ext("alice").overlaps(&ext("alice")) && !ext("alice").overlaps(&ext("Alice")));
        assert!(!ext("alice").overlaps(&ext("0-9")));
    }
}
