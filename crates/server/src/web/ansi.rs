//! Log text to HTML: every character escaped, ANSI colours (SGR: the 16 basic colours, bold,
//! dim, italic, underline) turned into `<span class="ansi-…">`, and every other escape or
//! control sequence dropped. A carriage return inside a line keeps what a terminal would show
//! last (progress bars). The colour state starts fresh on every line.
//!
//! `static/job.js` renders live log lines with the same rules, building DOM nodes instead of
//! markup; a change here belongs there too.

use std::fmt::Write as _;

/// The SGR attributes of a run of text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Style {
    /// 0-15: the basic and bright colours.
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

impl Style {
    fn classes(&self) -> String {
        let mut classes = Vec::new();
        if let Some(fg) = self.fg {
            classes.push(format!("ansi-fg-{fg}"));
        }
        if let Some(bg) = self.bg {
            classes.push(format!("ansi-bg-{bg}"));
        }
        if self.bold {
            classes.push("ansi-bold".to_owned());
        }
        if self.dim {
            classes.push("ansi-dim".to_owned());
        }
        if self.italic {
            classes.push("ansi-italic".to_owned());
        }
        if self.underline {
            classes.push("ansi-underline".to_owned());
        }
        classes.join(" ")
    }

    /// Applies one SGR sequence's parameters (`1;31`, `38;5;9`, empty = reset).
    fn apply(&mut self, params: &str) {
        let codes: Vec<Option<u16>> = params
            .split([';', ':'])
            .map(|p| {
                if p.is_empty() {
                    Some(0)
                } else {
                    p.parse().ok()
                }
            })
            .collect();
        let mut i = 0;
        while i < codes.len() {
            let Some(code) = codes[i] else {
                i += 1;
                continue;
            };
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => {
                    self.bold = false;
                    self.dim = false;
                }
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = Some((code - 30) as u8),
                39 => self.fg = None,
                40..=47 => self.bg = Some((code - 40) as u8),
                49 => self.bg = None,
                90..=97 => self.fg = Some((code - 90 + 8) as u8),
                100..=107 => self.bg = Some((code - 100 + 8) as u8),
                38 | 48 => {
                    // 38;5;N (256 colours: only the first 16 are kept) or 38;2;R;G;B (dropped).
                    let colour = match codes.get(i + 1).copied().flatten() {
                        Some(5) => {
                            let n = codes.get(i + 2).copied().flatten();
                            i += 2;
                            n.filter(|n| *n < 16).map(|n| n as u8)
                        }
                        Some(2) => {
                            i += 4;
                            None
                        }
                        _ => None,
                    };
                    if code == 38 {
                        self.fg = colour;
                    } else {
                        self.bg = colour;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// What a terminal shows of a line with carriage returns: the text after the last `\r`
/// that has text after it (a trailing `\r`, as in CRLF, changes nothing).
fn after_carriage_return(line: &str) -> &str {
    let line = line.trim_end_matches('\r');
    match line.rfind('\r') {
        Some(at) => &line[at + 1..],
        None => line,
    }
}

/// Renders one log line (without its `\n`) as HTML.
pub fn render_line(line: &str) -> String {
    let line = after_carriage_return(line);
    let mut out = String::with_capacity(line.len() + 16);
    let mut style = Style::default();
    let mut text = String::new();
    let mut chars = line.chars().peekable();
    let flush = |text: &mut String, style: &Style, out: &mut String| {
        if text.is_empty() {
            return;
        }
        let classes = style.classes();
        if classes.is_empty() {
            escape_html(text, out);
        } else {
            let _ = write!(out, "<span class=\"{classes}\">");
            escape_html(text, out);
            out.push_str("</span>");
        }
        text.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    // CSI: parameter bytes, intermediate bytes, one final byte.
                    let mut params = String::new();
                    let mut last = None;
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            last = Some(c);
                            break;
                        }
                        params.push(c);
                    }
                    if last == Some('m') {
                        flush(&mut text, &style, &mut out);
                        style.apply(&params);
                    }
                }
                Some(']') => {
                    // OSC: up to BEL or ESC \.
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            if chars.peek() == Some(&'\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => text.push(c),
            c if c.is_control() => {}
            c => text.push(c),
        }
    }
    flush(&mut text, &style, &mut out);
    out
}

/// Log text without any escape sequence or control character (for titles and plain views).
pub fn strip(line: &str) -> String {
    let html = render_line(line);
    // render_line only adds spans and entities; undo them for plain text.
    let mut out = String::with_capacity(html.len());
    let mut rest = html.as_str();
    while let Some(at) = rest.find(['<', '&']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with('<') {
            match rest.find('>') {
                Some(end) => rest = &rest[end + 1..],
                None => break,
            }
        } else {
            let (entity, len) = [
                ("&amp;", '&'),
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&quot;", '"'),
                ("&#39;", '\''),
            ]
            .iter()
            .find(|(e, _)| rest.starts_with(e))
            .map(|(e, c)| (*c, e.len()))
            .unwrap_or(('&', 1));
            out.push(entity);
            rest = &rest[len..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, expected: &str) {
        assert_eq!(render_line(line), expected, "{line:?}");
    }

    #[test]
    fn markup_in_log_text_is_escaped() {
        check(
            "<script>alert('x')</script> & \"q\"",
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;",
        );
    }

    #[test]
    fn sgr_colours_become_classes() {
        check(
            "\u{1b}[31merror\u{1b}[0m: bad",
            "<span class=\"ansi-fg-1\">error</span>: bad",
        );
        check(
            "\u{1b}[1;92mok\u{1b}[22m done\u{1b}[m",
            "<span class=\"ansi-fg-10 ansi-bold\">ok</span><span class=\"ansi-fg-10\"> done</span>",
        );
        check(
            "\u{1b}[38;5;4mblue\u{1b}[38;5;200mpink\u{1b}[38;2;1;2;3mrgb",
            "<span class=\"ansi-fg-4\">blue</span>pinkrgb",
        );
        check(
            "\u{1b}[41m \u{1b}[49m",
            "<span class=\"ansi-bg-1\"> </span>",
        );
    }

    #[test]
    fn other_sequences_and_controls_are_dropped() {
        check("a\u{1b}[2Kb\u{1b}[1Gc", "abc");
        check("\u{1b}]0;title\u{7}text", "text");
        check("\u{1b}]8;;http://x\u{1b}\\link", "link");
        check("bell\u{7}\u{0}\tend", "bell\tend");
        check("dangling\u{1b}", "dangling");
        check("\u{1b}[31", "");
    }

    #[test]
    fn carriage_returns_keep_what_the_terminal_shows() {
        check("10%\r50%\r100%", "100%");
        check("windows line\r", "windows line");
    }

    #[test]
    fn strip_gives_plain_text() {
        assert_eq!(strip("\u{1b}[31m<b>&x</b>\u{1b}[0m"), "<b>&x</b>");
    }
}
