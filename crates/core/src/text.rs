//! Text that reaches a terminal.
//!
//! Titles, descriptions, agent names and paths come from other agents, other database
//! roles and other tools as much as from the user. Printed raw, an ESC or C1 byte
//! drives the terminal (sets its title, clears the screen, moves the cursor), a CR
//! overwrites the line already shown, and a bidirectional override makes text read in
//! another order than it is stored. So the rule has two halves:
//!
//! - **Input** refuses these characters where tasklease creates text (titles, agent
//!   names, tags; descriptions keep newline and tab): [`forbidden`].
//! - **Output** for people escapes them whatever their origin — a row written by plain
//!   SQL never went through the input check: [`escape`], [`escape_lines`].
//!
//! The escape is Rust's: `\u{1b}` for ESC, `\u{202e}` for a right-to-left override.
//! A backslash is printed as it is, so escaping is idempotent (output escaped twice
//! reads the same) at the price that a title which itself contains the six characters
//! `\u{1b}` looks like an escaped ESC; `--json` prints the exact text.

use std::borrow::Cow;

/// Bidirectional embeddings, overrides (U+202A–U+202E) and isolates (U+2066–U+2069):
/// they reorder the text displayed after them.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A character a terminal acts on instead of showing: C0 controls (newline and tab
/// included), DEL, C1 controls, and the bidirectional controls.
pub fn is_terminal_control(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// `s` with every [`is_terminal_control`] character written as `\u{XX}`.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_keeping(s, false)
}

/// As [`escape`], but newlines stay: for multi-line text, each line escaped.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    escape_keeping(s, true)
}

fn escape_keeping(s: &str, newlines: bool) -> Cow<'_, str> {
    let hostile = |c: char| is_terminal_control(c) && !(newlines && c == '\n');
    if !s.contains(hostile) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hostile(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The first character of `s` that tasklease refuses in stored text, other than those
/// in `allowed` (`\n` and `\t` for descriptions).
pub fn forbidden(s: &str, allowed: &[char]) -> Option<char> {
    s.chars()
        .find(|c| is_terminal_control(*c) && !allowed.contains(c))
}

/// `U+001B (escape)`: a refused character, named so it can be found in the input.
pub fn describe(c: char) -> String {
    let name = match c {
        '\0' => "NUL",
        '\t' => "tab",
        '\n' => "line feed",
        '\r' => "carriage return",
        '\u{1b}' => "escape",
        '\u{7f}' => "delete",
        '\u{202e}' => "right-to-left override",
        '\u{202d}' => "left-to-right override",
        c if is_bidi_control(c) => "bidirectional control",
        c if (c as u32) < 0x20 => "C0 control",
        _ => "C1 control",
    };
    format!("U+{:04X} ({name})", c as u32)
}

/// Quotes user input for an error message: escaped, and cut short when long, so a
/// 10 kB or binary argument cannot flood the terminal.
pub fn quote(s: &str) -> String {
    const SHOW: usize = 40;
    let mut out: String = s.chars().take(SHOW).flat_map(char::escape_debug).collect();
    if s.chars().count() > SHOW {
        out.push('…');
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_text_is_not() {
        assert_eq!(escape("plain ü 字 \\ text"), "plain ü 字 \\ text");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape("\u{1b}]0;pwned\u{7}x\r\u{9b}2J\u{202e}y\u{7f}\t\n"),
            "\\u{1b}]0;pwned\\u{7}x\\u{d}\\u{9b}2J\\u{202e}y\\u{7f}\\u{9}\\u{a}"
        );
        assert_eq!(escape_lines("a\u{1b}\nb\r"), "a\\u{1b}\nb\\u{d}");
        let once = escape("\u{1b}[2J");
        assert_eq!(escape(&once), once);
        for c in ['\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{85}'] {
            assert!(is_terminal_control(c), "{c:?}");
        }
        assert!(!is_terminal_control('\u{2070}'));
    }

    #[test]
    fn forbidden_honours_what_is_allowed() {
        assert_eq!(forbidden("a\tb\nc", &['\n', '\t']), None);
        assert_eq!(forbidden("a\r\nb", &['\n', '\t']), Some('\r'));
        assert_eq!(forbidden("a\tb", &[]), Some('\t'));
        assert_eq!(describe('\u{202e}'), "U+202E (right-to-left override)");
        assert_eq!(describe('\u{9b}'), "U+009B (C1 control)");
    }
}
