//! The watch list (`[watch]`, the README's "Watch list"): which callers alert the team when
//! they join. Pure; the roster keeps the list in force ([`super::Roster::watched`]) and the
//! Discord side posts the alerts.
//!
//! - A caller matches by number when their number, read in E.164 the way the contacts are
//!   ([`super::names::e164`]), is one of `watch.numbers`.
//! - A caller matches by name when any name known for them — caller ID, the contact's name, the
//!   directory's name ([`Names::all_names`]) — contains one of `watch.names`, ignoring case:
//!   the precedence that picks the name shown does not hide a name from the list.
//! - The host of a conference is never on it for that conference: it is their call.

use super::ids::Identity;
use super::names::Names;
use crate::config::Watch;
use std::collections::HashSet;

/// The watch list, ready to match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchList {
    /// E.164 numbers (the settings checked them).
    numbers: HashSet<String>,
    /// Lower-cased, trimmed, never empty.
    names: Vec<String>,
    /// `watch.alert_roles`: whom an alert mentions (kept here so a reload changes both at once).
    alert_roles: Vec<u64>,
}

/// Why a caller matched, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    Number,
    /// The watched piece of a name (as lower-cased).
    Name(String),
}

impl WatchList {
    pub fn new(watch: &Watch) -> WatchList {
        WatchList {
            numbers: watch.numbers.iter().cloned().collect(),
            names: watch
                .names
                .iter()
                .map(|name| name.trim().to_lowercase())
                .filter(|name| !name.is_empty())
                .collect(),
            alert_roles: watch.alert_roles.clone(),
        }
    }

    /// The Discord roles an alert mentions.
    pub fn alert_roles(&self) -> &[u64] {
        &self.alert_roles
    }

    /// Whether nobody is watched.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty() && self.names.is_empty()
    }

    /// Whether `identity` (as RingCentral gave it) is on the list, with `names` supplying the
    /// contact's and the directory's names and the default country code.
    pub fn matches(&self, identity: &Identity, names: &Names) -> Option<Matched> {
        if self.is_empty() {
            return None;
        }
        if names
            .number(identity)
            .is_some_and(|number| self.numbers.contains(&number))
        {
            return Some(Matched::Number);
        }
        let known: Vec<String> = names
            .all_names(identity)
            .iter()
            .map(|name| name.to_lowercase())
            .collect();
        self.names
            .iter()
            .find(|watched| known.iter().any(|name| name.contains(watched.as_str())))
            .map(|watched| Matched::Name(watched.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(name: Option<&str>, number: Option<&str>, extension: Option<&str>) -> Identity {
        Identity::of(name, number, extension)
    }

    fn list(numbers: &[&str], names: &[&str]) -> WatchList {
        WatchList::new(&Watch {
            numbers: numbers.iter().map(|n| n.to_string()).collect(),
            names: names.iter().map(|n| n.to_string()).collect(),
            alert_roles: vec![],
        })
    }

    #[test]
    fn a_number_matches_in_e164_whatever_form_ringcentral_gives_it_in() {
        let names = Names::with_contacts([], Some("1".to_owned()));
        let watch = list(&["+13105550199"], &[]);
        for number in ["+13105550199", "(310) 555-0199", "1 310 555 0199"] {
            assert_eq!(
                watch.matches(&identity(None, Some(number), None), &names),
                Some(Matched::Number),
                "{number}"
            );
        }
        assert_eq!(
            watch.matches(&identity(None, Some("+13105550198"), None), &names),
            None
        );
        let no_country = Names::default();
        assert_eq!(
            watch.matches(&identity(None, Some("(310) 555-0199"), None), &no_country),
            None,
            "a national number is not read without a default country code"
        );
    }

    #[test]
    fn a_name_matches_as_a_case_insensitive_piece_of_any_known_name() {
        let mut names = Names::with_contacts(
            [("+14155550142".to_owned(), "Paco Vu (vendor)".to_owned())],
            None,
        );
        names.set_directory_name("62288", "Dana Whitfield".to_owned());
        let watch = list(&[], &["paco vu", "WHITFIELD"]);
        // The contact's name wins for display, but caller ID alone would not have matched.
        assert_eq!(
            watch.matches(
                &identity(Some("WIRELESS CALLER"), Some("+14155550142"), None),
                &names
            ),
            Some(Matched::Name("paco vu".into()))
        );
        // Caller ID wins for display over the directory, which still matches.
        assert_eq!(
            watch.matches(&identity(Some("Agent 99"), None, Some("62288")), &names),
            Some(Matched::Name("whitfield".into()))
        );
        assert_eq!(
            watch.matches(&identity(Some("Mr PACO VU"), None, None), &names),
            Some(Matched::Name("paco vu".into()))
        );
        assert_eq!(
            watch.matches(&identity(Some("Paco"), None, None), &names),
            None
        );
    }

    #[test]
    fn an_empty_list_matches_nobody() {
        let watch = WatchList::default();
        assert!(watch.is_empty());
        assert_eq!(
            watch.matches(
                &identity(Some("Anyone"), Some("+13105550199"), None),
                &Names::default()
            ),
            None
        );
    }
}
