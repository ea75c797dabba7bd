//! Secret masking for step logs, as GitHub's runner does it.
//!
//! A [`Masker`] holds the values that must never reach a log: job secrets
//! ([`Masker::add_secret`]), values from `::add-mask::` ([`Masker::add_mask`]), proxy passwords
//! and, rarely, regular expressions. Every value is registered together with the encoded forms
//! under which a step may print it (base64, JSON, URI, XML escapes...; see [`EncoderSet`]), and
//! each line of a multi-line value is registered on its own. Masking replaces every occurrence
//! with `***`; occurrences that overlap or touch become a single `***`.
//!
//! [`Masker::mask`] masks one whole text. [`StreamMasker`] masks a byte stream that arrives in
//! arbitrary chunks: a secret split across two chunks is still masked. It holds back only the
//! bytes that may still be the start of a secret (at most the longest secret minus one byte,
//! or the current line up to [`REGEX_LINE_LIMIT`] when regexes are registered), so memory stays
//! bounded on a 50 MB line without a newline.
//!
//! Literal matching is one Aho-Corasick pass over the bytes (all matches, overlapping ones
//! included, so the union of covered ranges is exact). Regexes are matched line by line.
//!
//! This module owns no I/O and never prints. It must not be bypassed: every byte of step output,
//! annotation text and step summary goes through a masker before it is stored or shown.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use indexmap::IndexSet;
use regex::bytes::Regex;

/// What replaces a secret in the log.
pub const MASK: &str = "***";

/// Regexes are matched against lines; a line longer than this is matched in pieces of this
/// many bytes, so a stream never holds back more than this for regex matching.
pub const REGEX_LINE_LIMIT: usize = 64 * 1024;

/// The streaming masker searches at most this many new bytes at a time.
const PIECE: usize = 64 * 1024;

/// Which encoded forms of each value are masked too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncoderSet {
    /// What GitHub's runner registers: base64 of the value and of the value without its first
    /// one or two bytes, `"` as `\"`, `'` as `''` (expression strings), the JSON-string escape,
    /// the URI-data escape, the XML escape, the value without its double quotes (when it is
    /// quoted and longer than 8), and the two parts PowerShell prints separately around `&`
    /// (each only when at least 6 characters long).
    #[default]
    Runner,
    /// The JSON-string and URI-data escapes only (the runner's unit-test host).
    JsonAndUri,
    /// The value only.
    None,
}

/// The set of secrets of one job. Cheap to query from many threads (`mask` takes `&self`);
/// adding a value rebuilds the search automaton lazily on the next search.
#[derive(Clone, Default)]
pub struct Masker {
    encoders: EncoderSet,
    /// Values already run through the encoders.
    originals: HashSet<String>,
    /// Every literal to mask: values and their encoded forms.
    literals: IndexSet<String>,
    regexes: Vec<Regex>,
    compiled: OnceLock<Compiled>,
}

/// The search automaton for the current literals.
#[derive(Clone)]
struct Compiled {
    searcher: Option<AhoCorasick>,
    /// Length in bytes of the longest literal.
    max_len: usize,
}

impl fmt::Debug for Masker {
    // Never print the secrets themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("encoders", &self.encoders)
            .field("values", &self.originals.len())
            .field("literals", &self.literals.len())
            .field("regexes", &self.regexes.len())
            .finish()
    }
}

impl Masker {
    /// A masker registering the encoded forms GitHub's runner registers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A masker registering the given encoded forms of each value.
    pub fn with_encoders(encoders: EncoderSet) -> Self {
        Self {
            encoders,
            ..Self::default()
        }
    }

    /// Registers a job secret. Like the runner does for secret variables, the value is trimmed;
    /// the whole value is masked, and so is each of its lines (split at `\r` and `\n`, trimmed;
    /// whitespace-only lines are not secrets). An empty value is ignored.
    pub fn add_secret(&mut self, value: &str) {
        let value = value.trim();
        self.add_value(value);
        self.add_lines(value);
    }

    /// Registers the value of an `::add-mask::` command: the whole value as given, and each of
    /// its lines (split at `\r` and `\n`, trimmed; whitespace-only lines are not secrets).
    /// Returns false, registering nothing, when the value is empty or only whitespace (the
    /// runner warns about that).
    pub fn add_mask(&mut self, value: &str) -> bool {
        if value.trim().is_empty() {
            return false;
        }
        self.add_value(value);
        self.add_lines(value);
        true
    }

    /// Registers the password of an authenticated proxy URL (`http://user:password@host:port`),
    /// as the runner does for `http_proxy`/`https_proxy`. The user info is percent-decoded
    /// first; the URI encoder then also covers the encoded form printed in the URL itself.
    pub fn add_proxy_password(&mut self, proxy_url: &str) {
        if let Some(password) = proxy_password(proxy_url) {
            self.add_value(&password);
        }
    }

    /// Registers a regular expression (Rust `regex` syntax, matched line by line; empty matches
    /// are ignored). An empty pattern is ignored.
    pub fn add_regex(&mut self, pattern: &str) -> Result<(), regex::Error> {
        if pattern.is_empty() || self.regexes.iter().any(|r| r.as_str() == pattern) {
            return Ok(());
        }
        self.regexes.push(Regex::new(pattern)?);
        Ok(())
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.literals.is_empty() && self.regexes.is_empty()
    }

    /// Masks one whole text: every occurrence of a registered literal, and every regex match
    /// within a line, becomes `***`; overlapping and adjacent occurrences become one `***`.
    pub fn mask(&self, text: &str) -> String {
        let compiled = self.compiled();
        let Some(searcher) = &compiled.searcher else {
            if self.regexes.is_empty() {
                return text.to_owned();
            }
            return self.mask_slow(compiled, text);
        };
        if self.regexes.is_empty() && !searcher.is_match(text) {
            return text.to_owned();
        }
        self.mask_slow(compiled, text)
    }

    fn mask_slow(&self, compiled: &Compiled, text: &str) -> String {
        let mut out = Vec::with_capacity(text.len());
        let mut emitter = Emitter::default();
        emitter.scan(compiled, &self.regexes, text.as_bytes(), 0, true, &mut out);
        into_string(out)
    }

    /// Every literal value registered, encoded forms included.
    #[cfg(test)]
    fn literals(&self) -> impl Iterator<Item = &str> {
        self.literals.iter().map(String::as_str)
    }

    fn add_lines(&mut self, value: &str) {
        if !value.contains(['\r', '\n']) {
            return;
        }
        for line in value.split(['\r', '\n']) {
            let line = line.trim();
            if !line.is_empty() {
                self.add_value(line);
            }
        }
    }

    /// GitHub's `SecretMasker.AddValue`: the value and its encoded forms.
    fn add_value(&mut self, value: &str) {
        if value.is_empty() || self.originals.contains(value) {
            return;
        }
        self.originals.insert(value.to_owned());
        let before = self.literals.len();
        self.literals.insert(value.to_owned());
        for encoded in encode(value, self.encoders) {
            if !encoded.is_empty() {
                self.literals.insert(encoded);
            }
        }
        if self.literals.len() != before {
            self.compiled = OnceLock::new();
        }
    }

    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            let max_len = self.literals.iter().map(String::len).max().unwrap_or(0);
            let searcher = (!self.literals.is_empty()).then(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&self.literals)
                    .expect("an automaton can be built for any set of non-empty literals")
            });
            Compiled { searcher, max_len }
        })
    }
}

/// Masks a byte stream that arrives in chunks (a step's stdout, say). Feed it with
/// [`write`](Self::write) and end it with [`finish`](Self::finish); the output equals
/// [`Masker::mask`] of the whole stream, whatever the chunk boundaries.
///
/// The masker is passed to every call, so secrets added mid-stream (`::add-mask::`) apply to
/// every byte not yet written out. Bytes already written out cannot be taken back.
#[derive(Debug, Default)]
pub struct StreamMasker {
    /// Bytes received and not yet settled; `pending[0]` is at stream offset `base`.
    pending: Vec<u8>,
    base: u64,
    emitter: Emitter,
}

impl StreamMasker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Masks `chunk` and appends to `out` every byte that can be settled; holds back the
    /// bytes that may still be the start of a secret.
    pub fn write(&mut self, masker: &Masker, chunk: &[u8], out: &mut Vec<u8>) {
        let compiled = masker.compiled();
        if compiled.searcher.is_none() && masker.regexes.is_empty() && self.pending.is_empty() {
            // Nothing to search for and nothing held back.
            if !chunk.is_empty() {
                out.extend_from_slice(chunk);
                self.base += chunk.len() as u64;
                self.emitter.passed_through(self.base);
            }
            return;
        }
        for piece in chunk.chunks(PIECE) {
            self.pending.extend_from_slice(piece);
            self.settle(masker, compiled, false, out);
        }
    }

    /// Ends the stream: masks and appends everything still held back. The masker can then be
    /// reused for a new stream.
    pub fn finish(&mut self, masker: &Masker, out: &mut Vec<u8>) {
        self.settle(masker, masker.compiled(), true, out);
        *self = Self::default();
    }

    /// Bytes currently held back.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    fn settle(&mut self, masker: &Masker, compiled: &Compiled, last: bool, out: &mut Vec<u8>) {
        let safe = self.emitter.scan(
            compiled,
            &masker.regexes,
            &self.pending,
            self.base,
            last,
            out,
        );
        let settled = usize::try_from(safe - self.base).expect("settled bytes are pending bytes");
        self.pending.drain(..settled);
        self.base = safe;
    }
}

/// Output state of one masked stream. Offsets are absolute stream offsets.
#[derive(Debug, Default)]
struct Emitter {
    /// Everything before this offset has been written out (as text or inside a mask).
    emitted: u64,
    /// The last thing written is a mask ending at `emitted`: a match starting at or before
    /// `emitted` extends it instead of writing a second `***`.
    mask_open: bool,
    /// Start of the first line not yet searched with the regexes.
    regex_from: u64,
    /// Ranges matched by regexes in searched lines and not yet written out.
    regex_ranges: Vec<(u64, u64)>,
    /// Scratch: the merged covered ranges of one scan.
    ranges: Vec<(u64, u64)>,
}

impl Emitter {
    /// The stream went up to `end` with nothing to mask.
    fn passed_through(&mut self, end: u64) {
        self.emitted = end;
        self.mask_open = false;
        self.regex_from = end;
    }

    /// Searches `hay` (stream bytes from offset `base`), writes out every byte that no future
    /// byte can affect, and returns the offset up to which the stream is settled. With `last`,
    /// everything is settled.
    fn scan(
        &mut self,
        compiled: &Compiled,
        regexes: &[Regex],
        hay: &[u8],
        base: u64,
        last: bool,
        out: &mut Vec<u8>,
    ) -> u64 {
        let end = base + hay.len() as u64;
        self.ranges.clear();
        if let Some(searcher) = &compiled.searcher {
            // Matches come in order of their end, so a new match can only swallow the last
            // ranges (it may start before them).
            for m in searcher.find_overlapping_iter(hay) {
                push_merged(
                    &mut self.ranges,
                    base + m.start() as u64,
                    base + m.end() as u64,
                );
            }
        }

        // A future match starts at the earliest `max_len - 1` bytes before the end.
        let hold = compiled.max_len.saturating_sub(1) as u64;
        let mut safe = if last {
            end
        } else {
            end.saturating_sub(hold).max(base)
        };

        if !regexes.is_empty() {
            self.search_lines(regexes, hay, base, last);
            if !last {
                safe = safe.min(self.regex_from);
            }
            if !self.regex_ranges.is_empty() {
                self.ranges.extend_from_slice(&self.regex_ranges);
                self.ranges.sort_unstable_by_key(|&(start, _)| start);
                let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.ranges.len());
                for &(start, stop) in &self.ranges {
                    match merged.last_mut() {
                        Some(prev) if start <= prev.1 => prev.1 = prev.1.max(stop),
                        _ => merged.push((start, stop)),
                    }
                }
                self.ranges = merged;
            }
        } else {
            self.regex_from = end;
        }

        let text = |from: u64, to: u64| {
            let from = usize::try_from(from - base).expect("offset inside the searched bytes");
            let to = usize::try_from(to - base).expect("offset inside the searched bytes");
            &hay[from..to]
        };
        for &(start, stop) in &self.ranges {
            if start >= safe {
                // A later match may still extend this range to the left.
                break;
            }
            if self.mask_open && start <= self.emitted {
                self.emitted = self.emitted.max(stop);
            } else {
                out.extend_from_slice(text(self.emitted, start));
                out.extend_from_slice(MASK.as_bytes());
                self.emitted = stop;
                self.mask_open = true;
            }
        }
        if self.emitted < safe {
            out.extend_from_slice(text(self.emitted, safe));
            self.emitted = safe;
            self.mask_open = false;
        }
        self.regex_ranges.retain(|&(start, _)| start >= safe);
        safe
    }

    /// Runs the regexes on every line of `hay` that is complete (or on pieces of
    /// [`REGEX_LINE_LIMIT`] bytes of a longer line), from `regex_from` on.
    fn search_lines(&mut self, regexes: &[Regex], hay: &[u8], base: u64, last: bool) {
        self.regex_from = self.regex_from.max(base);
        let start_len = self.regex_ranges.len();
        loop {
            let from = usize::try_from(self.regex_from - base).expect("regex_from is pending");
            let rest = &hay[from..];
            let window = &rest[..rest.len().min(REGEX_LINE_LIMIT)];
            let (line, consumed) = match window.iter().position(|&b| b == b'\n') {
                Some(newline) => (&rest[..newline], newline + 1),
                None if rest.len() >= REGEX_LINE_LIMIT => (window, REGEX_LINE_LIMIT),
                None if last && !rest.is_empty() => (rest, rest.len()),
                None => break,
            };
            let line_base = self.regex_from;
            for regex in regexes {
                regex_ranges(regex, line, line_base, &mut self.regex_ranges);
            }
            self.regex_from += consumed as u64;
        }
        if self.regex_ranges.len() != start_len {
            self.regex_ranges.sort_unstable_by_key(|&(start, _)| start);
        }
    }
}

/// Adds `[start, stop)` to ranges sorted by start, merging it with the last ranges when they
/// overlap or touch. `stop` is never smaller than the stops already there.
fn push_merged(ranges: &mut Vec<(u64, u64)>, mut start: u64, mut stop: u64) {
    while let Some(&(prev_start, prev_stop)) = ranges.last() {
        if start > prev_stop {
            break;
        }
        start = start.min(prev_start);
        stop = stop.max(prev_stop);
        ranges.pop();
    }
    ranges.push((start, stop));
}

/// Every match of `regex` in `line`, searching again from one byte after each match start
/// (GitHub's `RegexSecret` does this, so matches may overlap).
fn regex_ranges(regex: &Regex, line: &[u8], line_base: u64, out: &mut Vec<(u64, u64)>) {
    let mut from = 0;
    while from < line.len() {
        let Some(m) = regex.find_at(line, from) else {
            break;
        };
        if m.end() > m.start() {
            out.push((line_base + m.start() as u64, line_base + m.end() as u64));
        }
        if m.end() == line.len() {
            // Any later match lies inside this one.
            break;
        }
        from = m.start() + 1;
    }
}

/// Masked output of valid UTF-8 is valid UTF-8 (literals are whole UTF-8 strings and regex
/// matches end on character boundaries); anything else is repaired rather than dropped.
fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The encoded forms of `value` registered alongside it.
fn encode(value: &str, encoders: EncoderSet) -> Vec<String> {
    match encoders {
        EncoderSet::None => Vec::new(),
        EncoderSet::JsonAndUri => vec![json_string_escape(value), uri_data_escape(value)],
        EncoderSet::Runner => vec![
            base64_shifted(value, 0),
            base64_shifted(value, 1),
            base64_shifted(value, 2),
            value.replace('"', "\\\""),
            value.replace('\'', "''"),
            json_string_escape(value),
            uri_data_escape(value),
            xml_escape(value),
            trim_double_quotes(value),
            powershell_pre_ampersand(value),
            powershell_post_ampersand(value),
        ],
    }
}

/// Base64 of the UTF-8 bytes without the first `shift` bytes (all bytes when there are not
/// more than `shift`). Base64 encodes 3 bytes as 4 characters, so a secret printed inside
/// base64 data looks like one of these three depending on its offset.
fn base64_shifted(value: &str, shift: usize) -> String {
    let bytes = value.as_bytes();
    if bytes.len() > shift {
        BASE64.encode(&bytes[shift..])
    } else {
        BASE64.encode(bytes)
    }
}

/// The inside of a JSON string literal holding `value`, escaped as Newtonsoft.Json does.
fn json_string_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Percent-encoding of every byte but the RFC 3986 unreserved characters (.NET's
/// `Uri.EscapeDataString`).
fn uri_data_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// .NET's `SecurityElement.Escape`.
fn xml_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// Lengths the runner compares are .NET string lengths (UTF-16 code units).
fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `"value"` without its quotes, when quoted and longer than 8.
fn trim_double_quotes(value: &str) -> String {
    if utf16_len(value) > 8 && value.starts_with('"') && value.ends_with('"') {
        value[1..value.len() - 1].to_owned()
    } else {
        String::new()
    }
}

/// When PowerShell reports an error about a command line holding the secret, it may color
/// parts of it, splitting the secret. `a&b&c` prints as `a&b&` + `c`; `a&+bc&d` as `a&+` +
/// `c&d` (the character after `&+` is the colored one). This is the first part.
fn powershell_pre_ampersand(value: &str) -> String {
    let section = if let Some(i) = value.find("&+") {
        &value[..i + 2]
    } else if let Some(i) = value.rfind('&') {
        &value[..=i]
    } else {
        return String::new();
    };
    if utf16_len(section) >= 6 {
        section.to_owned()
    } else {
        String::new()
    }
}

/// The second part; see [`powershell_pre_ampersand`].
fn powershell_post_ampersand(value: &str) -> String {
    let section = if let Some(i) = value.find("&+") {
        let mut after = value[i + 2..].chars();
        // Skip the colored character; nothing is left when it is the last one.
        match after.next() {
            Some(_) => after.as_str(),
            None => "",
        }
    } else if let Some(i) = value.rfind('&') {
        &value[i + 1..]
    } else {
        return String::new();
    };
    if utf16_len(section) >= 6 {
        section.to_owned()
    } else {
        String::new()
    }
}

/// The percent-decoded password of `scheme://user:password@host...`.
fn proxy_password(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or(after_scheme);
    let (user_info, _) = authority.rsplit_once('@')?;
    let user_info = percent_decode(user_info);
    let (_, password) = user_info.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    into_string(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    const ORACLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/oracles/runner-masking.json"
    );

    fn masker_for(encoders: &str) -> Masker {
        Masker::with_encoders(match encoders {
            "runner_host" => EncoderSet::Runner,
            "l0_test_host" | "legacy_2016" => EncoderSet::JsonAndUri,
            other => panic!("unknown encoder set {other}"),
        })
    }

    fn strings(v: &Value) -> Vec<&str> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Runs one oracle case; returns why it failed.
    fn run_case(case: &Value) -> Result<(), String> {
        let mut masker = masker_for(case["encoders"].as_str().unwrap_or_default());
        for secret in strings(&case["secrets"]) {
            masker.add_secret(secret);
        }
        for regex in strings(&case["regexes"]) {
            masker.add_regex(regex).map_err(|e| e.to_string())?;
        }
        // `::add-mask::` and `::stop-commands::` lines go through the command processor, as
        // in the runner.
        let mut processor = crate::command::CommandProcessor::default();
        for line in strings(&case["add_mask_commands"]) {
            for effect in processor.process_line(line).effects {
                if let crate::command::Effect::AddMask(value) = effect {
                    masker.add_mask(&value);
                }
            }
        }
        let mut input = case["input"].as_str().map(str::to_owned);
        if let Some(env) = case["env"].as_object() {
            for (name, url) in env {
                if name.eq_ignore_ascii_case("http_proxy")
                    || name.eq_ignore_ascii_case("https_proxy")
                {
                    let url = url.as_str().unwrap_or_default();
                    masker.add_proxy_password(url);
                    // The runner traces the proxy address it configured.
                    input.get_or_insert_with(|| format!("Configuring proxy {url}"));
                }
            }
        }
        let input = input.unwrap_or_default();
        let actual = masker.mask(&input);

        // The streaming masker must agree, whatever the chunking.
        for size in [1, 2, 3, 7] {
            let mut stream = StreamMasker::new();
            let mut out = Vec::new();
            for chunk in input.as_bytes().chunks(size) {
                stream.write(&masker, chunk, &mut out);
            }
            stream.finish(&masker, &mut out);
            if out != actual.as_bytes() {
                return Err(format!(
                    "stream with {size}-byte chunks gave {:?}, whole text {actual:?}",
                    String::from_utf8_lossy(&out)
                ));
            }
        }

        let expected = case
            .get("expected_current_mask")
            .or_else(|| case.get("expected"))
            .and_then(Value::as_str);
        if let Some(expected) = expected
            && actual != expected
        {
            return Err(format!("got {actual:?}, expected {expected:?}"));
        }
        if let Some(needle) = case["expected_contains"].as_str()
            && !actual.contains(needle)
        {
            return Err(format!("{actual:?} does not contain {needle:?}"));
        }
        for needle in strings(&case["expected_not_contains"]) {
            if actual.contains(needle) {
                return Err(format!("{actual:?} contains {needle:?}"));
            }
        }
        Ok(())
    }

    #[test]
    fn every_masking_oracle_case_passes() {
        let text = std::fs::read_to_string(ORACLE).expect("oracle file is readable");
        let oracle: Value = serde_json::from_str(&text).expect("oracle file is JSON");
        let cases = oracle["cases"].as_array().expect("cases array");
        let mut failures = Vec::new();
        for case in cases {
            if let Err(why) = run_case(case) {
                failures.push(format!("{}: {why}", case["id"]));
            }
        }
        let passed = cases.len() - failures.len();
        println!(
            "runner-masking.json: {passed}/{} passed ({:.1}%)",
            cases.len(),
            100.0 * passed as f64 / cases.len() as f64
        );
        assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    }

    fn check(secrets: &[&str], input: &str, expected: &str) {
        let mut masker = Masker::with_encoders(EncoderSet::None);
        for s in secrets {
            masker.add_secret(s);
        }
        assert_eq!(
            masker.mask(input),
            expected,
            "secrets {secrets:?} in {input:?}"
        );
    }

    #[test]
    fn overlapping_and_adjacent_occurrences_become_one_mask() {
        check(&["abc"], "xabcabcx", "x***x");
        check(&["bcd", "def"], "abcdefg", "a***g");
        check(&["cd", "abcdef"], "abcdefg", "***g");
        check(&["aa"], "aaaaa", "***");
        check(&["ab", "cd"], "ab cd", "*** ***");
    }

    #[test]
    fn runner_encoders_cover_the_usual_encodings() {
        let mut masker = Masker::new();
        masker.add_secret("p@ss w\"rd'<&>");
        let encoded = [
            BASE64.encode("p@ss w\"rd'<&>"),
            "p%40ss%20w%22rd%27%3C%26%3E".to_owned(),
            "p@ss w\\\"rd'<&>".to_owned(),
            "p@ss w\"rd''<&>".to_owned(),
            "p@ss w&quot;rd&apos;&lt;&amp;&gt;".to_owned(),
        ];
        for e in encoded {
            assert_eq!(masker.mask(&format!("[{e}]")), "[***]", "{e}");
        }
    }

    #[test]
    fn json_escape_matches_newtonsoft() {
        assert_eq!(
            json_string_escape("a\"b\\c\n\u{1}\u{2028}"),
            "a\\\"b\\\\c\\n\\u0001\\u2028"
        );
    }

    #[test]
    fn multi_line_secret_masks_each_line() {
        let mut masker = Masker::new();
        masker.add_secret("  first line\n second line \r\n\n   \n");
        assert_eq!(masker.mask("first line"), "***");
        assert_eq!(masker.mask("x second line x"), "x *** x");
        assert_eq!(masker.mask("   "), "   ");
    }

    #[test]
    fn whitespace_only_add_mask_registers_nothing() {
        let mut masker = Masker::new();
        assert!(!masker.add_mask(" \r\n  "));
        assert!(masker.is_empty());
        assert!(masker.add_mask("x"));
    }

    #[test]
    fn maskers_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Masker>();
        shareable::<StreamMasker>();
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let mut masker = Masker::new();
        masker.add_secret("hunter2-secret");
        assert!(!format!("{masker:?}").contains("hunter2"));
    }

    #[test]
    fn secret_split_across_writes_is_masked() {
        let mut masker = Masker::with_encoders(EncoderSet::None);
        masker.add_secret("supersecret");
        let mut stream = StreamMasker::new();
        let mut out = Vec::new();
        stream.write(&masker, b"token: super", &mut out);
        assert!(!String::from_utf8_lossy(&out).contains("super"));
        stream.write(&masker, b"secret\nnext", &mut out);
        stream.finish(&masker, &mut out);
        assert_eq!(out, b"token: ***\nnext");
    }

    #[test]
    fn secret_added_mid_stream_masks_what_was_not_written_yet() {
        let mut masker = Masker::with_encoders(EncoderSet::None);
        masker.add_secret("abc");
        let mut stream = StreamMasker::new();
        let mut out = Vec::new();
        stream.write(&masker, b"abc xy", &mut out);
        // "xy" may be the start of a longer secret added now.
        masker.add_mask("xyz-long-secret");
        stream.write(&masker, b"z-long-secret and xyz-long-secret", &mut out);
        stream.finish(&masker, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "*** *** and ***");
    }

    #[test]
    fn long_line_without_newline_keeps_memory_bounded() {
        let mut masker = Masker::new();
        masker.add_secret("0123456789abcdef");
        let mut stream = StreamMasker::new();
        let mut out = Vec::new();
        let chunk = vec![b'x'; 1 << 20];
        let mut max_pending = 0;
        for _ in 0..50 {
            stream.write(&masker, &chunk, &mut out);
            max_pending = max_pending.max(stream.pending_len());
            out.clear();
        }
        stream.finish(&masker, &mut out);
        let longest = masker.literals().map(str::len).max().unwrap_or(0);
        assert!(max_pending < longest, "held back {max_pending} bytes");
    }

    #[test]
    fn regexes_are_matched_line_by_line_in_streams_too() {
        let mut masker = Masker::new();
        masker.add_regex("Password=.*").expect("valid regex");
        let text = "a\n# Password=hunter2!\nnext line\n";
        assert_eq!(masker.mask(text), "a\n# ***\nnext line\n");
        let mut stream = StreamMasker::new();
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(4) {
            stream.write(&masker, chunk, &mut out);
        }
        stream.finish(&masker, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "a\n# ***\nnext line\n");
    }

    #[test]
    fn proxy_password_is_percent_decoded() {
        assert_eq!(
            proxy_password("http://me:p%40ss@proxy:3128/").as_deref(),
            Some("p@ss")
        );
        assert_eq!(proxy_password("http://proxy:3128"), None);
        assert_eq!(proxy_password("http://user@proxy:3128"), None);
    }

    /// The masking definition, written the slow and obvious way.
    fn reference_mask(literals: &[&str], text: &str) -> String {
        let bytes = text.as_bytes();
        let mut covered = vec![false; bytes.len()];
        let mut starts_mask = vec![false; bytes.len() + 1];
        let mut ranges = Vec::new();
        for lit in literals.iter().filter(|l| !l.is_empty()) {
            for start in 0..bytes.len() {
                if bytes[start..].starts_with(lit.as_bytes()) {
                    ranges.push((start, start + lit.len()));
                }
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        for &(s, e) in &merged {
            starts_mask[s] = true;
            covered[s..e].iter_mut().for_each(|c| *c = true);
        }
        let mut out = Vec::new();
        for i in 0..bytes.len() {
            if starts_mask[i] {
                out.extend_from_slice(MASK.as_bytes());
            }
            if !covered[i] {
                out.push(bytes[i]);
            }
        }
        into_string(out)
    }

    fn stream_mask(masker: &Masker, text: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut stream = StreamMasker::new();
        let mut out = Vec::new();
        let mut from = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
        cuts.sort_unstable();
        for cut in cuts {
            stream.write(masker, &text[from..cut.max(from)], &mut out);
            from = cut.max(from);
        }
        stream.write(masker, &text[from..], &mut out);
        stream.finish(masker, &mut out);
        out
    }

    proptest! {
        #[test]
        fn streamed_output_equals_whole_text_masking(
            secrets in prop::collection::vec("[abc\n]{1,6}", 1..5),
            text in "[abcd\n]{0,200}",
            cuts in prop::collection::vec(0usize..1000, 0..12),
        ) {
            let mut masker = Masker::with_encoders(EncoderSet::None);
            for s in &secrets {
                masker.add_mask(s);
            }
            let whole = masker.mask(&text);
            let literals: Vec<&str> = masker.literals().collect();
            prop_assert_eq!(&whole, &reference_mask(&literals, &text));
            let streamed = stream_mask(&masker, text.as_bytes(), &cuts);
            prop_assert_eq!(String::from_utf8_lossy(&streamed), whole.as_str());
            for s in &secrets {
                let s = s.trim();
                if !s.is_empty() {
                    prop_assert!(!whole.contains(s), "{:?} left in {:?}", s, whole);
                }
            }
        }

        #[test]
        fn streamed_output_equals_whole_text_masking_with_encoders_and_regexes(
            secrets in prop::collection::vec("[a-z\"&+' ]{1,12}", 1..4),
            text in "[a-z\"&+' \nYWJj=]{0,300}",
            cuts in prop::collection::vec(0usize..1000, 0..12),
        ) {
            let mut masker = Masker::new();
            for s in &secrets {
                masker.add_secret(s);
            }
            masker.add_regex("b+c").expect("valid regex");
            let whole = masker.mask(&text);
            let streamed = stream_mask(&masker, text.as_bytes(), &cuts);
            prop_assert_eq!(String::from_utf8_lossy(&streamed), whole.as_str());
        }
    }

    /// Throughput of the streaming masker: 100 MB of log lines with 10 secrets (110 literals
    /// with their encodings), in 64 KiB chunks. Run with
    /// `cargo test --release -p gantry-runner mask::tests::stream_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, run in release mode"]
    fn stream_throughput() {
        let mut masker = Masker::new();
        for i in 0..10 {
            masker.add_secret(&format!("s3cr3t-value-{i}-{}", "k".repeat(i * 3)));
        }
        let mut log = Vec::new();
        let mut n = 0u64;
        while log.len() < 100 * 1024 * 1024 {
            n += 1;
            log.extend_from_slice(
                format!(
                    "[{n:>8}] compiling crate-{} v1.{}.0 (/home/runner/work/src) ok\n",
                    n % 97,
                    n % 13
                )
                .as_bytes(),
            );
            if n.is_multiple_of(1000) {
                log.extend_from_slice(b"token=s3cr3t-value-3-kkkkkkkkk\n");
            }
        }
        let mb = log.len() as f64 / 1e6;
        // The machine may be busy: report the best of a few runs.
        let best = |f: &mut dyn FnMut()| {
            (0..5)
                .map(|_| {
                    let started = std::time::Instant::now();
                    f();
                    started.elapsed().as_secs_f64()
                })
                .fold(f64::INFINITY, f64::min)
        };
        let searcher = masker
            .compiled()
            .searcher
            .clone()
            .expect("secrets registered");
        let mut matches = 0;
        let bare = best(&mut || matches = searcher.find_overlapping_iter(&log[..]).count());
        let mut out = Vec::with_capacity(log.len());
        let streamed = best(&mut || {
            out.clear();
            let mut stream = StreamMasker::new();
            for chunk in log.chunks(64 * 1024) {
                stream.write(&masker, chunk, &mut out);
            }
            stream.finish(&masker, &mut out);
        });
        // The runner's line path: `Masker::mask` on batches of whole lines (256 KiB).
        let text = String::from_utf8(log.clone()).expect("ASCII log");
        let mut batches = Vec::new();
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let cut = rest[..rest.len().min(256 * 1024)]
                .rfind('\n')
                .map_or(rest.len(), |i| i + 1);
            batches.push(&rest[..cut]);
            rest = &rest[cut..];
        }
        let mut masked_len = 0;
        let batched = best(&mut || {
            masked_len = batches.iter().map(|b| masker.mask(b).len()).sum::<usize>();
        });
        println!(
            "{} literals, {matches} matches in {mb:.0} MB: StreamMasker {:.0} MB/s, \
             Masker::mask on 256 KiB batches {:.0} MB/s (bare overlapping search {:.0} MB/s)",
            masker.literals.len(),
            mb / streamed,
            mb / batched,
            mb / bare
        );
        assert_eq!(masked_len, out.len());
        assert!(!String::from_utf8_lossy(&out).contains("s3cr3t"));
    }
}
