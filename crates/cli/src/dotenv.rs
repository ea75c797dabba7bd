//! `.env`-style files for `--secret-file` and `--env-file`: `NAME=value` lines, `#` comments,
//! an optional `export ` prefix, single-quoted values taken literally, double-quoted values with
//! `\n`, `\t`, `\"`, `\\` escapes (and real newlines inside the quotes).

/// Parses `text`; an error names the line and what is wrong.
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let number = index + 1;
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let trimmed = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let Some((name, rest)) = trimmed.split_once('=') else {
            return Err(format!(
                "line {number}: expected NAME=value, found `{line}`"
            ));
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "line {number}: `{name}` is not a valid name (letters, digits and _ only)"
            ));
        }
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('"') {
            // Double quotes may span lines.
            let mut raw = body.to_owned();
            while !ends_with_unescaped_quote(&raw) {
                match lines.next() {
                    Some((_, next)) => {
                        raw.push('\n');
                        raw.push_str(next);
                    }
                    None => {
                        return Err(format!(
                            "line {number}: the quoted value of {name} is not closed"
                        ));
                    }
                }
            }
            let inner = &raw[..raw.rfind('"').unwrap_or(raw.len())];
            unescape(inner)
        } else if let Some(body) = rest.strip_prefix('\'') {
            match body.rfind('\'') {
                Some(end) => body[..end].to_owned(),
                None => {
                    return Err(format!(
                        "line {number}: the quoted value of {name} is not closed"
                    ));
                }
            }
        } else {
            // Unquoted: up to a ` #` comment, trimmed.
            let value = match rest.find(" #") {
                Some(i) => &rest[..i],
                None => rest,
            };
            value.trim_end().to_owned()
        };
        pairs.push((name.to_owned(), value));
    }
    Ok(pairs)
}

fn ends_with_unescaped_quote(text: &str) -> bool {
    let trimmed = text.trim_end();
    if !trimmed.ends_with('"') {
        return false;
    }
    let backslashes = trimmed[..trimmed.len() - 1]
        .chars()
        .rev()
        .take_while(|c| *c == '\\')
        .count();
    backslashes % 2 == 0
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_like_dotenv_tools_do() {
        let text = "# comment\nMY_SECRET=top-secret\nMULTILINE=\"foo\\nbar\\nbaz\"\n\
                    JSON={\"foo\": \"bar\"}\nexport QUOTED='a \\n b'\nTRAIL=x # note\n\
                    SPAN=\"line one\nline two\"\n";
        let pairs = parse_dotenv(text).expect("valid");
        assert_eq!(
            pairs,
            vec![
                ("MY_SECRET".into(), "top-secret".into()),
                ("MULTILINE".into(), "foo\nbar\nbaz".into()),
                ("JSON".into(), "{\"foo\": \"bar\"}".into()),
                ("QUOTED".into(), "a \\n b".into()),
                ("TRAIL".into(), "x".into()),
                ("SPAN".into(), "line one\nline two".into()),
            ]
        );
    }

    #[test]
    fn mistakes_name_their_line() {
        assert_eq!(
            parse_dotenv("A=1\nnot a pair\n"),
            Err("line 2: expected NAME=value, found `not a pair`".into())
        );
        assert!(
            parse_dotenv("B=\"open\n")
                .expect_err("unclosed")
                .contains("line 1")
        );
    }
}
