//! The contacts file (`contacts.path`): the text of a CSV file of `number,name` records, read
//! into E.164 numbers and names, with a problem per record that cannot be used.
//!
//! The format, RFC 4180 with a little lenience:
//!
//! - fields are separated by commas and may be in double quotes; inside quotes `""` is a quote,
//!   and commas and line breaks (CRLF or LF) are part of the field;
//! - a UTF-8 byte-order mark at the start is skipped, and so are blank lines and a first record
//!   whose fields are `number,name` (any case, spaces around them ignored);
//! - a record has exactly two fields: the number, read by [`e164`] (the one reader of numbers,
//!   shared with the names layer), and the name, trimmed and cut to
//!   [`MAX_NAME_CHARS`] characters;
//! - the same number listed again: the later name is used;
//! - a quote that is never closed swallows the rest of the file, so the rest is not read.
//!
//! Pure: the caller reads the file (the app's contacts loader, which also bounds its size with
//! [`MAX_FILE_BYTES`]) and hands in the text. Problems name the line and what is wrong, never the
//! number or the name: the file is personal data, and problems go to logs.

use super::names::{MAX_NAME_CHARS, e164};
use std::collections::HashMap;

/// The largest contacts file read. A team's contacts are a few hundred lines; a file this large
/// is a mistake (a wrong path, an export of something else), and reading it whole would hold it
/// all in memory.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// The most contacts kept: the names live in memory for as long as ringside runs, and every
/// reload builds them again.
pub const MAX_ENTRIES: usize = 100_000;

/// A contacts file, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// `(E.164 number, name)`, each number once, in the order the numbers first appear.
    pub entries: Vec<(String, String)>,
    /// What could not be used, in file order.
    pub problems: Vec<Problem>,
}

/// A record that could not be used (or only in part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line the record starts on.
    pub line: usize,
    /// What is wrong, without the record's values.
    pub problem: String,
}

/// Reads the text of a contacts file; `default_country_code` (`contacts.default_country_code`)
/// is how a number without `+` is read. Never fails: what cannot be used is in the problems.
pub fn parse(text: &str, default_country_code: Option<&str>) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parsed = Parsed::default();
    // Number → (index in entries, the line it was last listed on).
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    let mut records = Records::new(text);
    let mut first = true;
    while let Some(record) = records.next() {
        let Record { line, fields } = match record {
            Ok(record) => record,
            Err(Unterminated { line }) => {
                parsed.problems.push(Problem {
                    line,
                    problem: "a quote opened on this line is never closed; the rest of the file is not read".into(),
                });
                break;
            }
        };
        if is_blank(&fields) {
            continue;
        }
        if std::mem::take(&mut first) && is_header(&fields) {
            continue;
        }
        let problem = |problem: String| Problem { line, problem };
        let [number, name] = fields.as_slice() else {
            parsed.problems.push(problem(format!(
                "has {} field{} (a record is number,name; put a name with a comma in double quotes)",
                fields.len(),
                if fields.len() == 1 { "" } else { "s" }
            )));
            continue;
        };
        let number = number.trim();
        if number.is_empty() {
            parsed.problems.push(problem("the number is empty".into()));
            continue;
        }
        let Some(number) = e164(number, default_country_code) else {
            let hint = match default_country_code {
                Some(_) => "",
                None => "; set contacts.default_country_code to accept national numbers",
            };
            parsed.problems.push(problem(format!(
                "the number is not an E.164 number (+ and country code){hint}"
            )));
            continue;
        };
        let name = name.trim();
        if name.is_empty() {
            parsed.problems.push(problem("the name is empty".into()));
            continue;
        }
        let name: String = name.chars().take(MAX_NAME_CHARS).collect();
        let name = name.trim_end().to_owned();
        match seen.get_mut(&number) {
            Some((index, earlier)) => {
                parsed.problems.push(problem(format!(
                    "the number is listed again (line {earlier}); the later name is used"
                )));
                *earlier = line;
                if let Some(entry) = parsed.entries.get_mut(*index) {
                    entry.1 = name;
                }
            }
            None if parsed.entries.len() >= MAX_ENTRIES => {
                parsed.problems.push(problem(format!(
                    "more than {MAX_ENTRIES} contacts; this record and the rest of the file are not read"
                )));
                break;
            }
            None => {
                seen.insert(number.clone(), (parsed.entries.len(), line));
                parsed.entries.push((number, name));
            }
        }
    }
    parsed
}

/// A blank line: one empty (or all-space) unquoted field.
fn is_blank(fields: &[String]) -> bool {
    matches!(fields, [only] if only.trim().is_empty())
}

/// The optional header row: exactly `number,name`, any case, spaces ignored.
fn is_header(fields: &[String]) -> bool {
    matches!(fields, [number, name]
        if number.trim().eq_ignore_ascii_case("number") && name.trim().eq_ignore_ascii_case("name"))
}

/// One CSV record and the line it starts on.
struct Record {
    line: usize,
    fields: Vec<String>,
}

/// A quote opened on `line` and never closed.
struct Unterminated {
    line: usize,
}

/// The records of a CSV text, one at a time.
struct Records<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    /// The line the next character is on.
    line: usize,
    done: bool,
}

impl<'a> Records<'a> {
    fn new(text: &'a str) -> Self {
        Records {
            chars: text.chars().peekable(),
            line: 1,
            done: false,
        }
    }

    fn next(&mut self) -> Option<Result<Record, Unterminated>> {
        if self.done || self.chars.peek().is_none() {
            return None;
        }
        let start = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        // Whether the field so far is a closed quoted part (spaces after it are dropped).
        let mut quoted = false;
        loop {
            let Some(c) = self.chars.next() else {
                fields.push(field);
                return Some(Ok(Record {
                    line: start,
                    fields,
                }));
            };
            match c {
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    quoted = false;
                }
                '\n' => {
                    self.line += 1;
                    fields.push(field);
                    return Some(Ok(Record {
                        line: start,
                        fields,
                    }));
                }
                '\r' if self.chars.peek() == Some(&'\n') => {}
                // A quote opens a quoted part at the start of a field (spaces before it are
                // dropped); elsewhere it is an ordinary character.
                '"' if !quoted && field.trim().is_empty() => {
                    field.clear();
                    let opened = self.line;
                    if !self.quoted_part(&mut field) {
                        self.done = true;
                        return Some(Err(Unterminated { line: opened }));
                    }
                    quoted = true;
                }
                ' ' | '\t' if quoted => {}
                c => field.push(c),
            }
        }
    }

    /// Reads a quoted part up to its closing quote into `field`; `false` if the text ends first.
    fn quoted_part(&mut self, field: &mut String) -> bool {
        while let Some(c) = self.chars.next() {
            match c {
                '"' if self.chars.peek() == Some(&'"') => {
                    self.chars.next();
                    field.push('"');
                }
                '"' => return true,
                '\r' if self.chars.peek() == Some(&'\n') => {}
                '\n' => {
                    self.line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entries(parsed: &Parsed) -> Vec<(&str, &str)> {
        parsed
            .entries
            .iter()
            .map(|(number, name)| (number.as_str(), name.as_str()))
            .collect()
    }

    fn problem_lines(parsed: &Parsed) -> Vec<usize> {
        parsed.problems.iter().map(|p| p.line).collect()
    }

    #[test]
    fn quoted_names_keep_their_commas_quotes_and_line_breaks() {
        let parsed = parse(
            "+14155550142,\"Vu, Paco\"\n\
             +14155550177,\"Bo \"\"the vendor\"\" Chen\"\n\
             \"+1 415 555 0199\",\"Cy\nOduya\"\n\
             +14155550111,Dee\n",
            None,
        );
        assert_eq!(
            entries(&parsed),
            [
                ("+14155550142", "Vu, Paco"),
                ("+14155550177", "Bo \"the vendor\" Chen"),
                ("+14155550199", "Cy\nOduya"),
                ("+14155550111", "Dee"),
            ]
        );
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    }

    #[test]
    fn a_line_break_inside_quotes_does_not_shift_later_line_numbers() {
        let parsed = parse("+14155550142,\"two\nlines\"\n+1,short\n", None);
        assert_eq!(problem_lines(&parsed), [3]);
    }

    #[test]
    fn a_header_row_is_skipped_in_any_case_but_only_as_the_first_record() {
        let parsed = parse(" Number , NAME \n+14155550142,Paco\nnumber,name\n", None);
        assert_eq!(entries(&parsed), [("+14155550142", "Paco")]);
        assert_eq!(
            problem_lines(&parsed),
            [3],
            "a later header is a bad number"
        );
    }

    #[test]
    fn a_byte_order_mark_crlf_line_ends_and_blank_lines_are_accepted() {
        let parsed = parse(
            "\u{feff}number,name\r\n\r\n+14155550142,Paco Vu\r\n   \r\n\"+14155550177\",\"Bo\r\nChen\"\r\n",
            None,
        );
        assert_eq!(
            entries(&parsed),
            [("+14155550142", "Paco Vu"), ("+14155550177", "Bo\nChen")]
        );
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    }

    #[test]
    fn a_national_number_without_a_default_country_code_is_a_problem_that_says_which_key_to_set() {
        let parsed = parse("(415) 555-0142,Paco\n+14155550177,Bo\n", None);
        assert_eq!(entries(&parsed), [("+14155550177", "Bo")]);
        assert_eq!(parsed.problems.len(), 1);
        assert_eq!(parsed.problems[0].line, 1);
        assert_eq!(
            parsed.problems[0].problem,
            "the number is not an E.164 number (+ and country code); set contacts.default_country_code to accept national numbers"
        );
    }

    #[test]
    fn national_numbers_are_read_with_a_default_country_code() {
        let parsed = parse("(415) 555-0142,Paco\n020 7183 8750,Lon\n", Some("1"));
        assert_eq!(
            entries(&parsed),
            [("+14155550142", "Paco"), ("+12071838750", "Lon")]
        );
        let parsed = parse("020 7183 8750,Lon\n", Some("44"));
        assert_eq!(entries(&parsed), [("+442071838750", "Lon")]);
    }

    #[test]
    fn an_unreadable_number_with_a_default_country_code_does_not_suggest_setting_it() {
        let parsed = parse("call me,Paco\n,Nobody\n", Some("1"));
        assert!(parsed.entries.is_empty());
        assert_eq!(
            parsed.problems,
            [
                Problem {
                    line: 1,
                    problem: "the number is not an E.164 number (+ and country code)".into()
                },
                Problem {
                    line: 2,
                    problem: "the number is empty".into()
                },
            ]
        );
    }

    #[test]
    fn a_number_listed_again_takes_the_later_name_and_reports_the_later_line() {
        let parsed = parse(
            "+14155550142,Old\n+14155550177,Bo\n+1 (415) 555-0142,New\n",
            None,
        );
        assert_eq!(
            entries(&parsed),
            [("+14155550142", "New"), ("+14155550177", "Bo")]
        );
        assert_eq!(
            parsed.problems,
            [Problem {
                line: 3,
                problem: "the number is listed again (line 1); the later name is used".into()
            }]
        );
    }

    #[test]
    fn an_empty_name_is_a_problem_and_names_are_trimmed_and_cut() {
        let long = "x".repeat(MAX_NAME_CHARS + 10);
        let parsed = parse(
            &format!("+14155550142,  \n+14155550177,  Bo Chen  \n+14155550199,{long}\n"),
            None,
        );
        assert_eq!(parsed.problems.len(), 1);
        assert_eq!(parsed.problems[0].line, 1);
        assert_eq!(parsed.problems[0].problem, "the name is empty");
        assert_eq!(parsed.entries[0].1, "Bo Chen");
        assert_eq!(parsed.entries[1].1.chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn an_unterminated_quote_is_reported_on_its_line_and_nothing_after_it_is_read() {
        let parsed = parse(
            "+14155550142,Paco\n+14155550177,\"Bo\n+14155550199,Cy\n",
            None,
        );
        assert_eq!(entries(&parsed), [("+14155550142", "Paco")]);
        assert_eq!(
            parsed.problems,
            [Problem {
                line: 2,
                problem:
                    "a quote opened on this line is never closed; the rest of the file is not read"
                        .into()
            }]
        );
    }

    #[test]
    fn a_record_without_exactly_two_fields_is_a_problem() {
        let parsed = parse(
            "+14155550142,Vu,Paco\n+14155550177\n+14155550199,Cy\n",
            None,
        );
        assert_eq!(entries(&parsed), [("+14155550199", "Cy")]);
        assert_eq!(problem_lines(&parsed), [1, 2]);
        assert!(parsed.problems[0].problem.starts_with("has 3 fields"));
        assert!(parsed.problems[1].problem.starts_with("has 1 field "));
    }

    #[test]
    fn problems_never_show_the_number_or_the_name() {
        let parsed = parse(
            "4155550142,Secret Name\n+14155550142,\n+14155550142,Secret\n+14155550142,Other\n+1,a,b\n",
            None,
        );
        assert_eq!(parsed.problems.len(), 4);
        for problem in &parsed.problems {
            assert!(!problem.problem.contains("555"), "{problem:?}");
            assert!(!problem.problem.contains("Secret"), "{problem:?}");
        }
    }

    #[test]
    fn entries_beyond_the_limit_are_not_read() {
        let text: String = (0..=MAX_ENTRIES)
            .map(|i| format!("+1415{i:07},n\n"))
            .collect();
        let parsed = parse(&text, None);
        assert_eq!(parsed.entries.len(), MAX_ENTRIES);
        assert_eq!(problem_lines(&parsed), [MAX_ENTRIES + 1]);
    }

    proptest! {
        #[test]
        fn any_text_is_read_without_panicking_and_problems_are_on_its_lines(
            text in "(?s)[\u{feff}\"',\r\n +0-9a-z\u{e9}]{0,200}|\\PC{0,200}",
            with_code in any::<bool>(),
        ) {
            let parsed = parse(&text, with_code.then_some("1"));
            let lines = text.split('\n').count();
            for problem in &parsed.problems {
                prop_assert!(problem.line >= 1 && problem.line <= lines, "{problem:?} of {lines}");
            }
            for (number, name) in &parsed.entries {
                prop_assert!(number.starts_with('+'));
                prop_assert!(!name.is_empty() && name.chars().count() <= MAX_NAME_CHARS);
            }
        }
    }
}
