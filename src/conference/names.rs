//! Names for callers from outside RingCentral's notifications: the team's contacts file and the
//! company directory. One precedence, applied wherever a caller is shown ([`Names::name`]):
//!
//! 1. a contact's name (the number, in E.164, is in `contacts.path`) wins over caller ID: it is
//!    how the team knows the caller;
//! 2. else the name RingCentral's notification carries (caller ID, or the extension's name);
//! 3. else the company directory's name for the extension id, which fills in only when nothing
//!    else names the caller.
//!
//! The roster applies it to every view it hands out, so the lines, the roster card, the timeline
//! picture, `/participants` and `/kick` all show the same name; `ringside replay` applies the
//! contacts only (it is offline). Pure: loading the contacts file and asking RingCentral are
//! done elsewhere, and handed in.

use super::ids::Identity;
use std::collections::HashMap;

// One reading of phone numbers for the contacts, the watch list and its settings (which sit
// below this layer, so it lives in `util`).
pub use crate::util::phone::e164;

/// The longest name kept or shown, in characters (the presentation cuts longer ones with `…`).
pub const MAX_NAME_CHARS: usize = 64;

/// The names ringside knows for callers besides RingCentral's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// E.164 number → the contact's name (`contacts.path`).
    contacts: HashMap<String, String>,
    /// `contacts.default_country_code`: how a number without `+` is read.
    default_country_code: Option<String>,
    /// Extension id → the company directory's name.
    directory: HashMap<String, String>,
}

impl Names {
    /// Names with these contacts (numbers already in E.164) and no directory names yet.
    pub fn with_contacts(
        contacts: impl IntoIterator<Item = (String, String)>,
        default_country_code: Option<String>,
    ) -> Names {
        Names {
            contacts: contacts.into_iter().collect(),
            default_country_code,
            directory: HashMap::new(),
        }
    }

    /// The same names with the contacts replaced (a reload of the file); directory names stay.
    pub fn replace_contacts(&mut self, contacts: Names) {
        self.contacts = contacts.contacts;
        self.default_country_code = contacts.default_country_code;
    }

    /// Records the company directory's name for an extension.
    pub fn set_directory_name(&mut self, extension_id: &str, name: String) {
        self.directory.insert(extension_id.to_owned(), name);
    }

    /// How many contacts are loaded.
    pub fn contacts_len(&self) -> usize {
        self.contacts.len()
    }

    /// Whether nothing could change a name (no contacts, no directory names).
    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty() && self.directory.is_empty()
    }

    /// The contact's name for `number`, if the number is in the contacts.
    pub fn contact(&self, number: &str) -> Option<&str> {
        let key = e164(number, self.default_country_code.as_deref())?;
        self.contacts.get(&key).map(String::as_str)
    }

    /// `identity`'s number in E.164 (read with `contacts.default_country_code`), if it has one.
    pub fn number(&self, identity: &Identity) -> Option<String> {
        identity
            .phone_number
            .as_deref()
            .and_then(|number| e164(number, self.default_country_code.as_deref()))
    }

    /// Every name known for `identity`, without the precedence (the watch list matches each):
    /// caller ID, the contact's name, the directory's name, each once.
    pub fn all_names(&self, identity: &Identity) -> Vec<String> {
        let contact = identity
            .phone_number
            .as_deref()
            .and_then(|number| self.contact(number));
        let directory = identity
            .extension_id
            .as_deref()
            .and_then(|id| self.directory.get(id))
            .map(String::as_str);
        let mut all: Vec<String> = Vec::new();
        for name in [identity.name.as_deref(), contact, directory]
            .into_iter()
            .flatten()
        {
            if !all.iter().any(|known| known == name) {
                all.push(name.to_owned());
            }
        }
        all
    }

    /// `identity` named by the one precedence: contact, else caller ID, else directory.
    pub fn name(&self, identity: &Identity) -> Identity {
        if self.is_empty() {
            return identity.clone();
        }
        let contact = identity
            .phone_number
            .as_deref()
            .and_then(|number| self.contact(number));
        let directory = || {
            identity
                .extension_id
                .as_deref()
                .and_then(|id| self.directory.get(id))
                .cloned()
        };
        Identity {
            name: contact
                .map(str::to_owned)
                .or_else(|| identity.name.clone())
                .or_else(directory),
            ..identity.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(name: Option<&str>, number: Option<&str>, extension: Option<&str>) -> Identity {
        Identity::of(name, number, extension)
    }

    #[test]
    fn numbers_are_read_as_e164_and_other_forms_only_with_a_default_country_code() {
        assert_eq!(
            e164("+1 (415) 555-0142", None).as_deref(),
            Some("+14155550142")
        );
        assert_eq!(
            e164("+44 20 7183 8750", None).as_deref(),
            Some("+442071838750")
        );
        assert_eq!(e164("(415) 555-0142", None), None, "national, no default");
        assert_eq!(
            e164("(415) 555-0142", Some("1")).as_deref(),
            Some("+14155550142")
        );
        assert_eq!(
            e164("1 415 555 0142", Some("1")).as_deref(),
            Some("+14155550142")
        );
        assert_eq!(
            e164("020 7183 8750", Some("44")).as_deref(),
            Some("+442071838750")
        );
        assert_eq!(
            e164("0044 20 7183 8750", Some("1")).as_deref(),
            Some("+442071838750")
        );
        for bad in [
            "",
            "+",
            "+0123456789",
            "+1234",
            "+1234567890123456",
            "call me",
            "+1 415 CALL",
        ] {
            assert_eq!(e164(bad, Some("1")), None, "{bad:?}");
        }
    }

    #[test]
    fn a_contact_wins_over_caller_id_and_the_directory_fills_in_only_when_nothing_else_names() {
        let mut names = Names::with_contacts(
            [("+14155550142".to_owned(), "Paco (vendor)".to_owned())],
            Some("1".to_owned()),
        );
        names.set_directory_name("62288", "Dana Whitfield".to_owned());
        names.set_directory_name("62299", "Directory Name".to_owned());
        let contact_over_caller_id =
            names.name(&identity(Some("WIRELESS CALLER"), Some("4155550142"), None));
        assert_eq!(
            contact_over_caller_id.name.as_deref(),
            Some("Paco (vendor)")
        );
        assert_eq!(
            contact_over_caller_id.phone_number.as_deref(),
            Some("4155550142"),
            "the number is kept as RingCentral gave it"
        );
        let directory_fills_in = names.name(&identity(None, None, Some("62288")));
        assert_eq!(directory_fills_in.name.as_deref(), Some("Dana Whitfield"));
        let caller_id_over_directory = names.name(&identity(Some("Agent 99"), None, Some("62299")));
        assert_eq!(caller_id_over_directory.name.as_deref(), Some("Agent 99"));
        let nobody = identity(None, Some("+16505550199"), Some("1"));
        assert_eq!(names.name(&nobody), nobody);
    }

    #[test]
    fn every_known_name_is_listed_once_whatever_the_precedence() {
        let mut names = Names::with_contacts(
            [("+14155550142".to_owned(), "Paco (vendor)".to_owned())],
            Some("1".to_owned()),
        );
        names.set_directory_name("62288", "Dana Whitfield".to_owned());
        let all = names.all_names(&identity(
            Some("WIRELESS CALLER"),
            Some("4155550142"),
            Some("62288"),
        ));
        assert_eq!(all, ["WIRELESS CALLER", "Paco (vendor)", "Dana Whitfield"]);
        let same = names.all_names(&identity(Some("Dana Whitfield"), None, Some("62288")));
        assert_eq!(same, ["Dana Whitfield"]);
        assert!(names.all_names(&identity(None, None, None)).is_empty());
        assert_eq!(
            names
                .number(&identity(None, Some("(415) 555-0142"), None))
                .as_deref(),
            Some("+14155550142")
        );
    }

    #[test]
    fn a_reload_replaces_the_contacts_and_keeps_the_directory() {
        let mut names = Names::with_contacts([("+14155550142".into(), "Old".into())], None);
        names.set_directory_name("62288", "Dana Whitfield".to_owned());
        names.replace_contacts(Names::with_contacts(
            [("+14155550177".into(), "New".into())],
            None,
        ));
        assert_eq!(names.contact("+14155550142"), None);
        assert_eq!(names.contact("+14155550177"), Some("New"));
        assert_eq!(
            names
                .name(&identity(None, None, Some("62288")))
                .name
                .as_deref(),
            Some("Dana Whitfield")
        );
    }
}
