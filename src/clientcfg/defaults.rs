//! `--default KEY=VALUE`: a field value for users that lack one, or the value of a
//! `$${KEY}` variable of FreeSWITCH directory XML.

use std::collections::{BTreeMap, BTreeSet};

use super::{Field, Fields};

/// The `--default`s of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    /// Values for users whose row or `<user>` lacks them.
    pub fields: Fields,
    /// Every other key: `$${NAME}` values for directory XML.
    pub variables: BTreeMap<String, String>,
}

/// A `--default` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefaultsError {
    /// Not `KEY=VALUE`.
    #[error("--default {arg:?} is not KEY=VALUE (e.g. --default autologin=true)")]
    NotAPair {
        /// The argument.
        arg: String,
    },
    /// A key that is per user or from the map.
    #[error(
        "--default {key}=… cannot be set: the login comes from each user and wsURL, \
         wsFallbackURL from the map"
    )]
    Reserved {
        /// The key.
        key: String,
    },
    /// The same key twice.
    #[error("--default {key} is given twice")]
    Repeated {
        /// The key.
        key: String,
    },
    /// Keys that are neither a field nor a variable of the input.
    #[error(
        "--default {}: not a field ({}){}",
        .keys.join(", "),
        Field::list(),
        if *.xml { " nor a $${NAME} variable of the directory files" } else { "" }
    )]
    Unknown {
        /// The keys, sorted.
        keys: Vec<String>,
        /// Whether the input was directory XML (which has variables).
        xml: bool,
    },
}

impl Defaults {
    /// Parses `KEY=VALUE` arguments: field keys become [`Defaults::fields`], any other
    /// key a variable (checked against the input by [`Defaults::check_variables`]).
    pub fn parse(args: &[String]) -> Result<Defaults, DefaultsError> {
        let mut defaults = Defaults::default();
        let mut keys = BTreeSet::new();
        for arg in args {
            let Some((key, value)) = arg.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                return Err(DefaultsError::NotAPair { arg: arg.clone() });
            };
            if ["login", "wsURL", "wsFallbackURL"].contains(&key) {
                return Err(DefaultsError::Reserved { key: key.into() });
            }
            if !keys.insert(key) {
                return Err(DefaultsError::Repeated { key: key.into() });
            }
            match Field::from_key(key) {
                Some(field) => defaults.fields.set(field, value),
                None => {
                    defaults.variables.insert(key.into(), value.into());
                }
            }
        }
        Ok(defaults)
    }

    /// `Ok` when every variable is one of `known` (the `$${NAME}`s the directory files
    /// use; none for CSV input, `xml` false).
    pub fn check_variables(
        &self,
        known: &BTreeSet<String>,
        xml: bool,
    ) -> Result<(), DefaultsError> {
        let keys: Vec<String> = self
            .variables
            .keys()
            .filter(|k| !known.contains(*k))
            .cloned()
            .collect();
        if keys.is_empty() {
            Ok(())
        } else {
            Err(DefaultsError::Unknown { keys, xml })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Defaults, DefaultsError> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Defaults::parse(&args)
    }

    #[test]
    fn field_keys_become_fields_and_other_keys_variables() {
        let d = parse(&["autologin=true", "domain=example.com", "textTo=a=b"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.fields.get(Field::Autologin), Some("true"));
        assert_eq!(d.fields.get(Field::TextTo), Some("a=b"));
        assert_eq!(
            d.variables.get("domain").map(String::as_str),
            Some("example.com")
        );
    }

    #[test]
    fn a_default_without_equals_sign_login_or_a_repeated_key_is_refused() {
        assert!(matches!(
            parse(&["autologin"]),
            Err(DefaultsError::NotAPair { .. })
        ));
        assert!(matches!(
            parse(&["=x"]),
            Err(DefaultsError::NotAPair { .. })
        ));
        assert!(matches!(
            parse(&["login=a@b"]),
            Err(DefaultsError::Reserved { .. })
        ));
        assert!(matches!(
            parse(&["wsURL=wss://x/"]),
            Err(DefaultsError::Reserved { .. })
        ));
        assert!(matches!(
            parse(&["cid=1", "cid=2"]),
            Err(DefaultsError::Repeated { .. })
        ));
    }

    #[test]
    fn unknown_keys_are_named_and_csv_input_has_no_variables() {
        let d = parse(&["domain=example.com", "colour=red"]).unwrap_or_else(|e| panic!("{e}"));
        let known = BTreeSet::from(["domain".to_owned()]);
        let err = d.check_variables(&known, true).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "--default colour: not a field (name, email, cid, extension, textTo, \
                 autologin, autocall, password) nor a $${NAME} variable of the directory files"
            )
        );
        let err = d.check_variables(&BTreeSet::new(), false).err();
        let want = DefaultsError::Unknown {
            keys: vec!["colour".into(), "domain".into()],
            xml: false,
        };
        assert_eq!(err, Some(want));
        assert!(parse(&["name=x"])
            .unwrap_or_else(|e| panic!("{e}"))
            .check_variables(&BTreeSet::new(), false)
            .is_ok());
    }
}
