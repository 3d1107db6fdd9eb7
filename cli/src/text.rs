//! Text from users and nodes, made safe to echo on a terminal.

/// `text` with control characters (and other invisible ones) escaped the way Rust writes them
/// (`\n`, `\u{1b}`), so an argument or an answer cannot move the cursor or recolour the terminal.
pub(crate) fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(shown("bob"), "bob");
        assert_eq!(shown("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(shown("two\nlines\r"), "two\\nlines\\r");
        assert_eq!(shown("rtl\u{202e}x"), "rtl\\u{202e}x");
        assert_eq!(shown("café ✓"), "café ✓");
    }
}
