//! Making caller-supplied text inert in a Discord message.
//!
//! A caller's name comes from RingCentral, which takes it from caller ID or a contact record:
//! anyone who can set their own caller-ID name can put `@everyone`, `<@&role>`, `**markdown**`,
//! a masked link or invisible characters into our channel. Every name and free-text reason goes
//! through [`text`] before it is placed in a message; the messages also carry an empty
//! `allowed_mentions`, so even a mention that slipped through would ping nobody.

/// The longest name shown, in characters (longer ones end with `…`).
pub use crate::conference::names::MAX_NAME_CHARS;

/// Characters that change how text renders without being visible: zero-width spaces and joiners,
/// bidirectional overrides and isolates, the word joiner family, the byte-order mark and the soft
/// hyphen. They are removed, so `@\u{200B}everyone` cannot pass for something else and a name
/// cannot reverse the text after it.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{034F}'
        | '\u{061C}'
        | '\u{115F}'..='\u{1160}'
        | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}'
    )
}

/// Markdown and mention syntax that Discord interprets anywhere in a line. A backslash before
/// ASCII punctuation shows the character itself.
fn special(c: char) -> bool {
    matches!(
        c,
        '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '>' | '[' | ']' | '(' | ')' | '#' | '-' | ':'
    )
}

/// `raw` as plain, single-line, inert text of at most `max_chars` characters, or `None` when
/// nothing visible is left.
pub fn text_limited(raw: &str, max_chars: usize) -> Option<String> {
    // Control characters (newlines included) become spaces, invisible ones go, runs of
    // whitespace collapse: a name is one line.
    let cleaned: String = raw
        .chars()
        .filter(|c| !invisible(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    let mut plain = words.join(" ");
    if plain.chars().count() > max_chars {
        plain = plain.chars().take(max_chars.saturating_sub(1)).collect();
        plain = plain.trim_end().to_owned();
        plain.push('…');
    }
    let mut out = String::with_capacity(plain.len() + 8);
    for c in plain.chars() {
        if special(c) {
            out.push('\\');
            out.push(c);
        } else if c == '@' {
            // `@everyone`, `@here` and `@name` stay visible but are no longer mention syntax.
            out.push('@');
            out.push('\u{200B}');
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// A caller's name (or any short caller-supplied text) made inert; see the module doc.
pub fn text(raw: &str) -> Option<String> {
    text_limited(raw, MAX_NAME_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_unchanged() {
        assert_eq!(text("Paco Vu").as_deref(), Some("Paco Vu"));
        assert_eq!(text("  Zoë   Ødegård ").as_deref(), Some("Zoë Ødegård"));
    }

    #[test]
    fn mentions_are_broken() {
        assert_eq!(text("@everyone").as_deref(), Some("@\u{200B}everyone"));
        assert_eq!(text("@here now").as_deref(), Some("@\u{200B}here now"));
        assert_eq!(
            text("<@&123456789012345678>").as_deref(),
            Some("\\<@\u{200B}&123456789012345678\\>")
        );
        assert_eq!(
            text("<#123> <t:0:R>").as_deref(),
            Some("\\<\\#123\\> \\<t\\:0\\:R\\>")
        );
    }

    #[test]
    fn markdown_is_shown_literally() {
        assert_eq!(text("**bold**").as_deref(), Some("\\*\\*bold\\*\\*"));
        assert_eq!(
            text("[click](https://x.example)").as_deref(),
            Some("\\[click\\]\\(https\\://x.example\\)")
        );
        assert_eq!(text("# Big").as_deref(), Some("\\# Big"));
        assert_eq!(text("||spoiler||").as_deref(), Some("\\|\\|spoiler\\|\\|"));
        assert_eq!(text("a\\b").as_deref(), Some("a\\\\b"));
    }

    #[test]
    fn invisible_and_control_characters_are_removed() {
        assert_eq!(
            text("@\u{200B}everyone").as_deref(),
            Some("@\u{200B}everyone")
        );
        assert_eq!(text("Pa\u{200D}co\u{202E}Vu").as_deref(), Some("PacoVu"));
        assert_eq!(
            text("line one\nline two\r\t").as_deref(),
            Some("line one line two")
        );
        assert_eq!(text("\u{200B}\u{FEFF}  \n"), None);
        assert_eq!(text(""), None);
    }

    #[test]
    fn long_names_are_cut_with_an_ellipsis() {
        let long = "x".repeat(500);
        let shown = text(&long).unwrap();
        assert_eq!(shown.chars().count(), MAX_NAME_CHARS);
        assert!(shown.ends_with('…'));
    }
}
