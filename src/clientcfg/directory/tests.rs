use std::collections::BTreeMap;

use super::*;

/// A folder holding `files` (path relative to it, content).
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn logins(users: &DirectoryUsers) -> Vec<&str> {
    users.users.iter().map(|u| u.login.as_str()).collect()
}

fn read_ok(path: &Path, pairs: &[(&str, &str)], passwords: bool) -> DirectoryUsers {
    read(path, &values(pairs), passwords).unwrap_or_else(|e| panic!("{e}"))
}

fn read_err(path: &Path, pairs: &[(&str, &str)]) -> String {
    match read(path, &values(pairs), true) {
        Ok(users) => panic!("read: {:?}", users.users),
        Err(e) => e.to_string(),
    }
}

const DOMAIN: &str = r#"<include>
  <domain name="$${domain}">
    <params>
      <param name="dial-string" value="{presence_id=${dialed_user}@${dialed_domain}}${sofia_contact(*/${dialed_user}@${dialed_domain})}"/>
    </params>
    <variables>
      <variable name="effective_caller_id_name" value="Domain default"/>
    </variables>
    <groups>
      <group name="default">
        <users>
          <X-PRE-PROCESS cmd="include" data="default/*.xml"/>
        </users>
      </group>
      <group name="sales">
        <users>
          <user id="1000" type="pointer"/>
        </users>
      </group>
    </groups>
  </domain>
</include>
"#;

fn user(id: &str, extra: &str) -> String {
    format!(
        "<include>\n  <user id=\"{id}\" number-alias=\"8{id}\">\n    <params>\n      \
         <param name=\"password\" value=\"$${{default_password}}\"/>\n    </params>\n    \
         <variables>\n      <variable name=\"effective_caller_id_number\" value=\"{id}\"/>\n      \
         {extra}\n    </variables>\n  </user>\n</include>\n"
    )
}

#[test]
fn a_folder_includes_user_files_by_glob_relative_to_the_including_file() {
    let named = "<variable name=\"effective_caller_id_name\" value=\"Ada\"/>";
    let nested = "<X-PRE-PROCESS cmd=\"include\" data=\"more/1002.xml\"/>";
    let dir = tree(&[
        ("default.xml", DOMAIN),
        ("default/1001.xml", &user("1001", named)),
        ("default/1000.xml", &user("1000", nested)),
        ("default/more/1002.xml", &user("1002", "")),
        ("default/.hidden.xml", &user("9999", "")),
        ("notes.txt", "not xml"),
    ]);
    let users = read_ok(dir.path(), &[("domain", "example.com")], false);
    assert_eq!(
        logins(&users),
        ["1000@example.com", "1002@example.com", "1001@example.com"],
        "sorted glob matches, includes where they stand, no hidden file, no pointer"
    );
    let ada = &users.users[2];
    assert_eq!(ada.fields.get(Field::Name), Some("Ada"));
    assert_eq!(ada.fields.get(Field::Cid), Some("1001"));
    assert_eq!(ada.fields.get(Field::Password), None, "not asked for");
    assert_eq!(
        users.users[0].fields.get(Field::Name),
        Some("Domain default"),
        "a user without its own variable inherits the domain's"
    );
    assert_eq!(
        ada.source.to_string(),
        format!(
            "{}:2: <user id=\"1001\">",
            dir.path().join("default/1001.xml").display()
        )
    );
    let names: Vec<&str> = users.variables.iter().map(String::as_str).collect();
    assert_eq!(names, ["default_password", "domain"]);
}

#[test]
fn number_aliases_and_pointers_add_no_login() {
    let dir = tree(&[("d.xml", DOMAIN), ("default/1000.xml", &user("1000", ""))]);
    let users = read_ok(&dir.path().join("d.xml"), &[("domain", "x.test")], false);
    assert_eq!(logins(&users), ["1000@x.test"]);
}

#[test]
fn passwords_are_read_only_when_asked_and_gateway_params_are_not_the_users() {
    let gateway = "</variables><gateways><gateway name=\"gw\"><param name=\"password\" \
                   value=\"carrier\"/></gateway></gateways><variables>";
    let dir = tree(&[
        ("d.xml", DOMAIN),
        ("default/1000.xml", &user("1000", gateway)),
    ]);
    let pairs = [("domain", "x.test"), ("default_password", "1234")];
    let users = read_ok(dir.path(), &pairs, true);
    assert_eq!(users.users[0].fields.get(Field::Password), Some("1234"));
    let users = read_ok(dir.path(), &[("domain", "x.test")], false);
    assert_eq!(users.users[0].fields.get(Field::Password), None);
}

#[test]
fn a_variable_without_a_value_is_an_error_naming_it_and_its_file() {
    let dir = tree(&[("d.xml", DOMAIN), ("default/1000.xml", &user("1000", ""))]);
    let err = read_err(dir.path(), &[("domain", "x.test")]);
    let file = dir.path().join("default/1000.xml");
    assert_eq!(
        err,
        format!(
            "{}:4: $${{default_password}} has no value: pass --default default_password=VALUE",
            file.display()
        )
    );
    let err = read_err(dir.path(), &[]);
    assert!(err.contains("d.xml:2: $${domain} has no value"), "{err}");
}

#[test]
fn include_cycles_are_errors_that_show_the_chain() {
    let a = "<include><X-PRE-PROCESS cmd=\"include\" data=\"sub/b.xml\"/></include>";
    let b = "<include>\n<X-PRE-PROCESS cmd=\"include\" data=\"../a.xml\"/></include>";
    let dir = tree(&[("a.xml", a), ("sub/b.xml", b)]);
    let err = read_err(&dir.path().join("a.xml"), &[]);
    let p = |name: &str| dir.path().join(name).display().to_string();
    let sub = dir.path().join("sub");
    assert_eq!(
        err,
        format!(
            "{}:2: include cycle: {} -> {} -> {}",
            p("sub/b.xml"),
            p("a.xml"),
            p("sub/b.xml"),
            sub.join("../a.xml").display()
        )
    );
    let glob_self = "<include><X-PRE-PROCESS cmd=\"include\" data=\"*.xml\"/></include>";
    let dir = tree(&[("all.xml", glob_self)]);
    let err = read_err(dir.path(), &[]);
    assert!(err.contains("include cycle"), "{err}");
}

#[test]
fn includes_nested_deeper_than_the_limit_are_refused() {
    let files: Vec<(String, String)> = (0..=MAX_INCLUDE_DEPTH)
        .map(|i| {
            let next = format!("<X-PRE-PROCESS cmd=\"include\" data=\"f{}.xml\"/>", i + 1);
            (format!("f{i}.xml"), format!("<include>{next}</include>"))
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let dir = tree(&borrowed);
    let err = read_err(&dir.path().join("f0.xml"), &[]);
    assert!(
        err.ends_with("includes nested deeper than 100 files"),
        "{err}"
    );
}

#[test]
fn a_glob_matching_nothing_includes_nothing_but_a_missing_file_is_an_error() {
    let empty = "<include><domain name=\"x.test\"><X-PRE-PROCESS cmd=\"include\" \
                 data=\"none/*.xml\"/></domain></include>";
    let dir = tree(&[("d.xml", empty)]);
    assert!(read_ok(dir.path(), &[], false).users.is_empty());
    let missing = empty.replace("none/*.xml", "missing.xml");
    let dir = tree(&[("d.xml", &missing)]);
    let err = read_err(dir.path(), &[]);
    assert!(err.starts_with("cannot read "), "{err}");
    assert!(err.contains("missing.xml"), "{err}");
}

#[test]
fn a_user_outside_a_domain_and_a_folder_without_xml_are_errors() {
    let dir = tree(&[("1000.xml", &user("1000", ""))]);
    let err = read_err(dir.path(), &[]);
    assert!(
        err.contains("<user id=\"1000\"> is outside any <domain>"),
        "{err}"
    );
    let dir = tree(&[("readme.txt", "x")]);
    let err = read_err(dir.path(), &[]);
    assert!(err.contains("no *.xml file in this folder"), "{err}");
    let err = read_err(&dir.path().join("nope"), &[]);
    assert!(err.starts_with("cannot read "), "{err}");
}

#[test]
fn user_values_beat_group_values_which_beat_domain_values() {
    let text = r#"<include><domain name="x.test">
      <variables><variable name="effective_caller_id_name" value="domain"/></variables>
      <groups><group name="g">
        <variables><variable name="effective_caller_id_name" value="group"/></variables>
        <users>
          <user id="a"/>
          <user id="b"><variables><variable name="effective_caller_id_name" value="own"/></variables></user>
        </users>
      </group></groups>
      <user id="c"/>
    </domain></include>"#;
    let dir = tree(&[("d.xml", text)]);
    let users = read_ok(dir.path(), &[], false);
    let names: Vec<_> = users
        .users
        .iter()
        .map(|u| (u.login.as_str(), u.fields.get(Field::Name)))
        .collect();
    assert_eq!(
        names,
        [
            ("a@x.test", Some("group")),
            ("b@x.test", Some("own")),
            ("c@x.test", Some("domain"))
        ]
    );
}
