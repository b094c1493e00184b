//! `$${NAME}`: FreeSWITCH's pre-processor variables (set in `vars.xml`), which
//! directory files use for the domain and default passwords. Here their values come
//! from `--default NAME=VALUE`; one without a value is an error, where FreeSWITCH
//! would put nothing.

use std::collections::BTreeMap;

/// The names of the `$${NAME}` references in `raw`, in order.
pub(super) fn names(raw: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = raw;
    while let Some((name, after)) = next_reference(rest) {
        found.push(name);
        rest = after;
    }
    found
}

/// `raw` with every `$${NAME}` replaced by its value, or the first name without one.
/// A `$${` without a closing `}` stays as written, as in FreeSWITCH.
pub(super) fn expand<'r>(
    raw: &'r str,
    values: &BTreeMap<String, String>,
) -> Result<String, &'r str> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("$${") {
        let Some((name, after)) = next_reference(&rest[start..]) else {
            break;
        };
        let value = values.get(name).ok_or(name)?;
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// The first complete `$${NAME}` of `text`: its name and the text after it.
fn next_reference(text: &str) -> Option<(&str, &str)> {
    let start = text.find("$${")? + 3;
    let len = text.get(start..)?.find('}')?;
    Some((text.get(start..start + len)?, text.get(start + len + 1..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("domain".to_owned(), "example.com".to_owned()),
            ("x".to_owned(), "$${domain}".to_owned()),
        ])
    }

    #[test]
    fn references_are_replaced_once_and_unclosed_ones_stay() {
        assert_eq!(expand("$${domain}", &values()), Ok("example.com".into()));
        assert_eq!(
            expand("a$${domain}b$${x}c", &values()),
            Ok("aexample.comb$${domain}c".into())
        );
        assert_eq!(
            expand("${dialed_user}@$${domain", &values()),
            Ok("${dialed_user}@$${domain".into())
        );
        assert_eq!(expand("plain", &values()), Ok("plain".into()));
    }

    #[test]
    fn a_reference_without_a_value_names_the_variable() {
        assert_eq!(expand("$${domain}/$${nope}", &values()), Err("nope"));
        assert_eq!(names("$${a}-$${b}-${c}-$${d"), ["a", "b"]);
    }
}
