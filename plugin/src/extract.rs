//! Pulls the configured fields out of one raw JSON line without building a document.
//!
//! The paths of all fields form a small trie; the parser descends only into keys on a path and
//! skips everything else with serde_json's iterative skipper, so cost is close to validating the
//! JSON and deep nesting outside the paths cannot exhaust the stack. Values borrow from the line
//! when they contain no escapes. Duplicate keys: the last one wins, as in most JSON readers.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::config::JsonPath;
use crate::engine::same;

/// Why a line could not be read as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractError {
    NotUtf8,
    NotJson(String),
    NotObject,
}

#[derive(Debug, Default)]
struct TrieNode {
    children: Vec<(String, usize)>,
    /// The children whose key is an array index (`0` in `resources.0.ARN`), by index.
    elements: Vec<(usize, usize)>,
    /// The slot filled with this node's scalar value, if a path ends here.
    slot: Option<usize>,
    /// Every slot at or below this node (cleared when a duplicate key revisits it).
    below: Vec<usize>,
    /// One bit per length (modulo 64) of the children's keys: most keys of a line are on no
    /// path, and most of those are rejected by their length alone.
    lengths: u64,
    /// Each child's key length and first eight bytes (see [`head`]), in `children`'s order:
    /// compared before the whole key.
    heads: Vec<(usize, u64)>,
    /// Open addressing over `children` by length and first word (see [`slot_of`]): each
    /// entry a child's position plus one, 0 empty; a power of two in size, at least twice
    /// the children.
    table: Vec<u16>,
}

/// Where a key of `len` bytes whose first word is `head` starts probing in a table of
/// `2^bits` entries.
#[inline]
fn slot_of(len: usize, head: u64, bits: u32) -> usize {
    ((head ^ len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

/// The first eight bytes of `key` (fewer, zero-padded, when it is shorter) as one word.
#[inline]
fn head(key: &[u8]) -> u64 {
    // A shorter key byte by byte: copying a slice of variable length is a `memory.copy`, a call
    // out of WebAssembly into the runtime.
    match key.first_chunk::<8>() {
        Some(word) => u64::from_le_bytes(*word),
        None => key.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b)),
    }
}

impl TrieNode {
    /// The child under `key`, if any.
    #[inline(always)]
    fn child(&self, key: &[u8]) -> Option<usize> {
        if self.lengths & (1u64 << (key.len() % 64)) == 0 {
            return None;
        }
        let h = head(key);
        let mask = self.table.len() - 1;
        let mut at = slot_of(key.len(), h, mask.count_ones());
        loop {
            let entry = usize::from(self.table[at]);
            if entry == 0 {
                return None;
            }
            let (len, kh) = self.heads[entry - 1];
            let (k, child) = &self.children[entry - 1];
            // The head holds a key's first eight bytes: only the rest is left to compare.
            if len == key.len() && kh == h && same(&k.as_bytes()[len.min(8)..], &key[len.min(8)..])
            {
                return Some(*child);
            }
            at = (at + 1) & mask;
        }
    }

    /// Builds [`TrieNode::table`] from the children.
    fn index(&mut self) {
        let size = (self.children.len() * 2).next_power_of_two().max(8);
        let bits = size.trailing_zeros();
        self.table = vec![0; size];
        for (i, &(len, h)) in self.heads.iter().enumerate() {
            let mut at = slot_of(len, h, bits);
            while self.table[at] != 0 {
                at = (at + 1) & (size - 1);
            }
            self.table[at] = u16::try_from(i + 1).expect("fewer than 65,535 keys under one key");
        }
    }
}

/// Extracts the values at a fixed set of JSON paths.
#[derive(Debug)]
pub struct Extractor {
    nodes: Vec<TrieNode>,
    slots: usize,
    /// (first slot, later slot) pairs of identical paths.
    aliases: Vec<(usize, usize)>,
}

/// The values found, one per path given to [`Extractor::new`]; `None` when absent or null.
pub type Slots<'a> = Vec<Option<Cow<'a, str>>>;

impl Extractor {
    /// An extractor for `paths`; slot `i` of the result holds the value of `paths[i]`.
    pub fn new(paths: &[JsonPath]) -> Extractor {
        let mut nodes = vec![TrieNode::default()];
        let mut aliases = Vec::new();
        for (slot, path) in paths.iter().enumerate() {
            // Two fields may read the same path: fill the later slot from the first.
            if let Some(first) = paths[..slot].iter().position(|p| p == path) {
                aliases.push((first, slot));
                continue;
            }
            let mut at = 0;
            nodes[0].below.push(slot);
            for key in path {
                at = match nodes[at].children.iter().find(|(k, _)| k == key) {
                    Some(&(_, child)) => child,
                    None => {
                        nodes.push(TrieNode::default());
                        let child = nodes.len() - 1;
                        nodes[at].children.push((key.clone(), child));
                        nodes[at].lengths |= 1u64 << (key.len() % 64);
                        nodes[at].heads.push((key.len(), head(key.as_bytes())));
                        if let Ok(index) = key.parse::<usize>() {
                            nodes[at].elements.push((index, child));
                        }
                        child
                    }
                };
                nodes[at].below.push(slot);
            }
            nodes[at].slot = Some(slot);
        }
        for node in &mut nodes {
            node.index();
        }
        Extractor {
            nodes,
            slots: paths.len(),
            aliases,
        }
    }

    /// Reads `line` and fills `out` (cleared first) with one value per path.
    ///
    /// Two things strict readers refuse in otherwise well-formed JSON are read anyway: a `\u`
    /// escape of a lone UTF-16 surrogate (`"\ud800"`, which JavaScript writers produce from a
    /// string cut in the middle of a character) as U+FFFD, the replacement character, as
    /// browsers and most JSON readers do; and a number beyond the range of a 64-bit float
    /// (`1e999`) as its text. An attacker who controls one field (a user agent, a port) must
    /// not be able to make the event unscorable with it. A UTF-8 byte-order mark before the
    /// object is skipped: files written on Windows begin with one, and concatenated (`cat`)
    /// it lands at the start of a line in the middle of a stream. The line itself is not
    /// changed.
    pub fn extract<'a>(&self, line: &'a [u8], out: &mut Slots<'a>) -> Result<(), ExtractError> {
        // Most lines are ASCII: the scanner reads them as bytes, with no separate pass to
        // validate them as UTF-8, and gives up at the first byte above 0x7f.
        if self.scan(line, true, out) {
            return Ok(());
        }
        let text = std::str::from_utf8(line).map_err(|_| ExtractError::NotUtf8)?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        match self.extract_str(text, out) {
            Err(ExtractError::NotJson(why)) => {
                let Some(mended) = mend(text) else {
                    return Err(ExtractError::NotJson(why));
                };
                let mut owned = Vec::new();
                // Still not JSON: report the first error, which names the place in the line
                // as it is.
                self.extract_str(&mended, &mut owned)
                    .map_err(|_| ExtractError::NotJson(why))?;
                out.clear();
                out.extend(
                    owned
                        .into_iter()
                        .map(|v| v.map(|v| Cow::Owned(v.into_owned()))),
                );
                Ok(())
            }
            other => other,
        }
    }

    fn extract_str<'a>(&self, text: &'a str, out: &mut Slots<'a>) -> Result<(), ExtractError> {
        out.clear();
        out.resize(self.slots, None);
        let (mut small, mut large) = ([0u64; 4], Vec::new());
        let visited = self.visited(&mut small, &mut large);
        // The common line first, by the scanner; anything it does not read (see `Scan`) is
        // read again, from the start, by serde_json.
        if self.scan_into(text.as_bytes(), false, out, visited) {
            return Ok(());
        }
        out.clear();
        out.resize(self.slots, None);
        visited.fill(0);
        self.extract_serde(text, out, visited)
    }

    /// Reads `line` by the scanner alone (`ascii`: giving up at any byte above 0x7f, so that
    /// `line` needs no validation as UTF-8); `false`, with `out` in any state, when it gives up.
    fn scan<'a>(&self, line: &'a [u8], ascii: bool, out: &mut Slots<'a>) -> bool {
        out.clear();
        out.resize(self.slots, None);
        let (mut small, mut large) = ([0u64; 4], Vec::new());
        let visited = self.visited(&mut small, &mut large);
        self.scan_into(line, ascii, out, visited)
    }

    /// A cleared set of one bit per trie node: in `small` when the trie fits, else in `large`.
    fn visited<'v>(&self, small: &'v mut [u64; 4], large: &'v mut Vec<u64>) -> &'v mut [u64] {
        if self.nodes.len() <= 64 * small.len() {
            &mut small[..]
        } else {
            large.resize(self.nodes.len().div_ceil(64), 0);
            &mut large[..]
        }
    }

    fn scan_into<'a>(
        &self,
        line: &'a [u8],
        ascii: bool,
        out: &mut Slots<'a>,
        visited: &mut [u64],
    ) -> bool {
        let mut scan = Scan {
            b: line,
            i: 0,
            high: if ascii { ONES << 7 } else { 0 },
        };
        if scan.ws() == Some(b'{')
            && scan.node(self, 0, out, visited).is_some()
            && scan.ws().is_none()
        {
            for &(from, to) in &self.aliases {
                out[to] = out[from].clone();
            }
            return true;
        }
        false
    }

    /// [`Extractor::extract_str`] by serde_json alone.
    fn extract_serde<'a>(
        &self,
        text: &'a str,
        out: &mut Slots<'a>,
        visited: &mut [u64],
    ) -> Result<(), ExtractError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let mut not_object = false;
        let seed = NodeSeed {
            ex: self,
            node: 0,
            out,
            visited,
            top: Some(&mut not_object),
        };
        match seed.deserialize(&mut de).and_then(|()| de.end()) {
            Ok(()) => {}
            Err(_) if not_object => return Err(ExtractError::NotObject),
            Err(e) => return Err(ExtractError::NotJson(e.to_string())),
        }
        for &(from, to) in &self.aliases {
            out[to] = out[from].clone();
        }
        Ok(())
    }
}

/// `text` mended where strict JSON readers refuse what is otherwise well-formed JSON, or `None`
/// when there is nothing to mend:
/// - a `\u` escape of a lone UTF-16 surrogate becomes `\ufffd`;
/// - a number beyond the range of a 64-bit float (`1e999`, a 400-digit integer) becomes a
///   string of its own text, which is how the extractor reads numbers anyway.
///
/// One pass that knows strings from the rest; anything else it leaves for the parser to judge.
fn mend(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let unit = |at: usize| -> Option<u16> {
        let h = b.get(at..at + 6)?;
        if h[0] != b'\\' || h[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&h[2..]).ok()?, 16).ok()
    };
    let mut out = String::new();
    let mut copied = 0;
    let mut mended = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] != b'\\' {
                        i += 1;
                        continue;
                    }
                    match unit(i) {
                        Some(0xD800..=0xDBFF) if matches!(unit(i + 6), Some(0xDC00..=0xDFFF)) => {
                            i += 12;
                        }
                        Some(0xD800..=0xDFFF) => {
                            out.push_str(&text[copied..i]);
                            out.push_str("\\ufffd");
                            i += 6;
                            copied = i;
                            mended = true;
                        }
                        Some(_) => i += 6,
                        // Any other escape: the backslash and the escaped byte.
                        None => i += 2,
                    }
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let token = &text[start..i];
                if token.parse::<f64>().is_ok_and(f64::is_infinite) {
                    out.push_str(&text[copied..start]);
                    out.push('"');
                    out.push_str(token);
                    out.push('"');
                    copied = i;
                    mended = true;
                }
            }
            _ => i += 1,
        }
    }
    if !mended {
        return None;
    }
    out.push_str(&text[copied.min(text.len())..]);
    Some(out)
}

/// Eight bytes of ones: `0x0101…01`.
const ONES: u64 = u64::MAX / 255;

/// One bit per byte of `c` (the lowest for its first) that may stop a string: a quote, a
/// backslash, a control character or, when `high`, a byte above 0x7f. Sixteen bytes in a few
/// WebAssembly SIMD instructions.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline]
pub(crate) fn stops16(c: &[u8; 16], high: bool) -> u32 {
    use core::arch::wasm32::{
        u8x16, u8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_splat, v128_and, v128_or,
    };
    let v = u8x16(
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13],
        c[14], c[15],
    );
    let quote = u8x16_eq(v, u8x16_splat(b'"'));
    let backslash = u8x16_eq(v, u8x16_splat(b'\\'));
    let control = u8x16_lt(v, u8x16_splat(0x20));
    let above = v128_and(v, u8x16_splat(if high { 0x80 } else { 0 }));
    u32::from(u8x16_bitmask(v128_or(
        v128_or(quote, backslash),
        v128_or(control, above),
    )))
}

/// The extractor's fast path: a scanner for the common line, an object whose values on the
/// paths are strings without escapes, booleans, null, objects or arrays. It reads what the
/// serde path reads (the same slots, the last duplicate key winning) and validates the rest of
/// the line at least as strictly (the JSON grammar; strings without control characters, with
/// valid escapes), but gives up (`None`) on anything else: a number or an escaped string on a
/// path, an escaped key, nesting deeper than 64 off the paths, or anything that is not JSON.
/// The serde path then reads the line from its start, so results and errors are the serde
/// path's. Off the paths, values are skipped without being decoded, sixteen bytes at a time
/// through strings (eight without WebAssembly SIMD).
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    /// `ONES << 7` to give up at the first byte above 0x7f (a line not validated as UTF-8),
    /// else 0.
    high: u64,
}

impl<'a> Scan<'a> {
    /// Skips whitespace; the next byte, `None` at the end.
    #[inline]
    fn ws(&mut self) -> Option<u8> {
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b' ' | b'\n' | b'\t' | b'\r' => self.i += 1,
                _ => return Some(c),
            }
        }
        None
    }

    /// Moves to the next quote, backslash or control character (or byte above 0x7f, see
    /// `high`) of a string, or to within eight bytes of the end of the line.
    #[inline]
    fn plain(&mut self) {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        while let Some(chunk) = self.b.get(self.i..).and_then(<[u8]>::first_chunk::<16>) {
            let m = stops16(chunk, self.high != 0);
            if m != 0 {
                self.i += m.trailing_zeros() as usize;
                return;
            }
            self.i += 16;
        }
        // A word at a time (the lowest flagged byte of a word is exact: a false flag only
        // follows a true one).
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            let ctrl = w.wrapping_sub(ONES * 0x20) & !w;
            let q = w ^ (ONES * u64::from(b'"'));
            let q = q.wrapping_sub(ONES) & !q;
            let s = w ^ (ONES * u64::from(b'\\'));
            let s = s.wrapping_sub(ONES) & !s;
            let m = (ctrl | q | s | (w & self.high)) & (ONES << 7);
            if m != 0 {
                self.i += m.trailing_zeros() as usize / 8;
                return;
            }
            self.i += 8;
        }
    }

    /// Reads a string whose opening quote is just before `self.i`: the index of its closing
    /// quote, and whether it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<(usize, bool)> {
        let b = self.b;
        let mut escaped = false;
        loop {
            self.plain();
            match *b.get(self.i)? {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    return Some((end, escaped));
                }
                b'\\' => {
                    escaped = true;
                    match *b.get(self.i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = b.get(self.i + 2..self.i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 6;
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 || (c >= 0x80 && self.high != 0) => return None,
                _ => self.i += 1,
            }
        }
    }

    /// Reads `word` (`true`, `false`, `null`) at `self.i`.
    #[inline]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? != word {
            return None;
        }
        self.i += word.len();
        Some(())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    /// Reads a number at `self.i` by the JSON grammar (its value is not computed).
    fn number(&mut self) -> Option<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match *self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// A key of an object being skipped, and its colon.
    #[inline]
    fn key(&mut self) -> Option<()> {
        if self.ws()? != b'"' {
            return None;
        }
        self.i += 1;
        self.string()?;
        if self.ws()? != b':' {
            return None;
        }
        self.i += 1;
        Some(())
    }

    /// Skips one value, without recursion (64 levels of nesting at most).
    fn skip(&mut self) -> Option<()> {
        // One bit per open container, the innermost lowest: 1 an object, 0 an array.
        let mut stack = 0u64;
        let mut depth = 0u32;
        loop {
            match self.ws()? {
                b'"' => {
                    self.i += 1;
                    self.string()?;
                }
                open @ (b'{' | b'[') => {
                    self.i += 1;
                    if depth == 64 {
                        return None;
                    }
                    let object = open == b'{';
                    let close = if object { b'}' } else { b']' };
                    if self.ws()? != close {
                        stack = stack << 1 | u64::from(object);
                        depth += 1;
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                    self.i += 1;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // After a value: close containers, or go on to the next value.
            loop {
                if depth == 0 {
                    return Some(());
                }
                let object = stack & 1 == 1;
                match self.ws()? {
                    b',' => {
                        self.i += 1;
                        if object {
                            self.key()?;
                        }
                        break;
                    }
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return None,
                }
                self.i += 1;
                stack >>= 1;
                depth -= 1;
            }
        }
    }

    /// Reads the value of trie node `node` at `self.i` (after whitespace), as [`NodeSeed`]
    /// does.
    fn node(
        &mut self,
        ex: &Extractor,
        node: usize,
        out: &mut Slots<'a>,
        visited: &mut [u64],
    ) -> Option<()> {
        let (word, bit) = (node / 64, 1u64 << (node % 64));
        if visited[word] & bit != 0 {
            for &s in &ex.nodes[node].below {
                out[s] = None;
            }
        }
        visited[word] |= bit;
        let n = &ex.nodes[node];
        let scalar = |out: &mut Slots<'a>, value: &'a str| {
            if let Some(slot) = n.slot {
                out[slot] = Some(Cow::Borrowed(value));
            }
        };
        match self.ws()? {
            b'{' => {
                self.i += 1;
                if self.ws()? == b'}' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if self.ws()? != b'"' {
                        return None;
                    }
                    self.i += 1;
                    let start = self.i;
                    let (end, escaped) = self.string()?;
                    if escaped {
                        return None;
                    }
                    let key = &self.b[start..end];
                    if self.ws()? != b':' {
                        return None;
                    }
                    self.i += 1;
                    match n.child(key) {
                        Some(child) => self.node(ex, child, out, visited)?,
                        None => self.skip()?,
                    }
                    match self.ws()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                if self.ws()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                let mut index = 0usize;
                loop {
                    match n.elements.iter().find(|&&(i, _)| i == index) {
                        Some(&(_, child)) => self.node(ex, child, out, visited)?,
                        None => self.skip()?,
                    }
                    match self.ws()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                    index += 1;
                }
            }
            b'"' => {
                self.i += 1;
                let start = self.i;
                let (end, escaped) = self.string()?;
                if escaped {
                    return None;
                }
                scalar(out, std::str::from_utf8(&self.b[start..end]).ok()?);
                Some(())
            }
            b't' => {
                self.literal(b"true")?;
                scalar(out, "true");
                Some(())
            }
            b'f' => {
                self.literal(b"false")?;
                scalar(out, "false");
                Some(())
            }
            b'n' => self.literal(b"null"),
            // A number (its text is the serde path's to write), or not JSON.
            _ => None,
        }
    }
}

struct NodeSeed<'x, 'o, 'a> {
    ex: &'x Extractor,
    node: usize,
    out: &'o mut Slots<'a>,
    /// One bit per trie node: visited already in this document.
    visited: &'o mut [u64],
    /// Set at the top level only: raised when the document is not an object.
    top: Option<&'o mut bool>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for NodeSeed<'_, '_, 'a> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // A node's slots are filled only below it: a node seen again (a duplicate key) clears
        // what its first value filled, one seen for the first time has nothing to clear.
        let (word, bit) = (self.node / 64, 1u64 << (self.node % 64));
        if self.visited[word] & bit != 0 {
            for &s in &self.ex.nodes[self.node].below {
                self.out[s] = None;
            }
        }
        self.visited[word] |= bit;
        deserializer.deserialize_any(self)
    }
}

impl<'a> NodeSeed<'_, '_, 'a> {
    fn scalar<E: de::Error>(self, value: Cow<'a, str>) -> Result<(), E> {
        if let Some(flag) = self.top {
            *flag = true;
            return Err(E::custom("not an object"));
        }
        if let Some(slot) = self.ex.nodes[self.node].slot {
            self.out[slot] = Some(value);
        }
        Ok(())
    }
}

impl<'de: 'a, 'a> Visitor<'de> for NodeSeed<'_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.scalar(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.scalar(Cow::Owned(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(Cow::Borrowed(if v { "true" } else { "false" }))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(Cow::Owned(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(Cow::Owned(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.scalar(Cow::Owned(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if let Some(flag) = self.top {
            *flag = true;
            return Err(E::custom("not an object"));
        }
        Ok(())
    }

    /// An array is skipped, except the elements a path names by index (`resources.0.ARN`).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(flag) = self.top {
            *flag = true;
            return Err(de::Error::custom("not an object"));
        }
        let elements = &self.ex.nodes[self.node].elements;
        let mut index = 0usize;
        loop {
            let child = elements
                .iter()
                .find(|&&(i, _)| i == index)
                .map(|&(_, child)| child);
            let more = match child {
                Some(child) => seq
                    .next_element_seed(NodeSeed {
                        ex: self.ex,
                        node: child,
                        out: &mut *self.out,
                        visited: &mut *self.visited,
                        top: None,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let node = &self.ex.nodes[self.node];
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match node.child(key.as_bytes()) {
                Some(child) => map.next_value_seed(NodeSeed {
                    ex: self.ex,
                    node: child,
                    out: &mut *self.out,
                    visited: &mut *self.visited,
                    top: None,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads an object key, borrowing it when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(p: &[&str]) -> Vec<JsonPath> {
        p.iter()
            .map(|s| s.split('.').map(str::to_owned).collect())
            .collect()
    }

    fn run(ex: &Extractor, line: &str) -> Result<Vec<Option<String>>, ExtractError> {
        let mut out = Vec::new();
        ex.extract(line.as_bytes(), &mut out)?;
        Ok(out.into_iter().map(|v| v.map(Cow::into_owned)).collect())
    }

    #[test]
    fn finds_nested_values_and_skips_the_rest() {
        let ex = Extractor::new(&paths(&["a.b", "a.c", "d", "e"]));
        let got = run(
            &ex,
            r#"{"x":[1,{"a":{"b":"no"}}],"a":{"c":3,"b":"y\"es"},"d":true,"e":null}"#,
        )
        .expect("ok");
        assert_eq!(
            got,
            vec![
                Some("y\"es".into()),
                Some("3".into()),
                Some("true".into()),
                None
            ]
        );
    }

    #[test]
    fn a_path_goes_into_an_array_by_index() {
        let ex = Extractor::new(&paths(&["resources.0.ARN", "names.1", "names.5", "o.0"]));
        let got = run(
            &ex,
            r#"{"resources":[{"ARN":"arn:key","type":"AWS::KMS::Key"},{"ARN":"second"}],"names":["p1",["deep"],"p3"],"o":{"0":"key zero"}}"#,
        )
        .expect("ok");
        // An element that is not a scalar counts as absent, like any object or array; an index
        // past the end is absent; in an object, "0" is an ordinary key.
        assert_eq!(
            got,
            vec![Some("arn:key".into()), None, None, Some("key zero".into())]
        );
        let got = run(&ex, r#"{"resources":"not an array","names":["a","b"]}"#).expect("ok");
        assert_eq!(got, vec![None, Some("b".into()), None, None]);
    }

    #[test]
    fn classifies_bad_lines() {
        let ex = Extractor::new(&paths(&["a"]));
        assert_eq!(run(&ex, "[1,2]"), Err(ExtractError::NotObject));
        assert_eq!(run(&ex, "\"a\""), Err(ExtractError::NotObject));
        assert_eq!(run(&ex, "null"), Err(ExtractError::NotObject));
        assert!(matches!(
            run(&ex, "{\"a\":1"),
            Err(ExtractError::NotJson(_))
        ));
        assert!(matches!(
            run(&ex, "{\"a\":1} x"),
            Err(ExtractError::NotJson(_))
        ));
        assert!(matches!(run(&ex, ""), Err(ExtractError::NotJson(_))));
        // A byte-order mark before the object is not part of it; anywhere else it is.
        assert_eq!(
            run(&ex, "\u{feff}{\"a\":\"x\"}"),
            Ok(vec![Some("x".into())])
        );
        assert!(matches!(
            run(&ex, "{\"a\":1}\u{feff}"),
            Err(ExtractError::NotJson(_))
        ));
        let mut out = Vec::new();
        assert_eq!(
            ex.extract(b"{\"a\":\"\xff\"}", &mut out),
            Err(ExtractError::NotUtf8)
        );
    }

    #[test]
    fn a_lone_surrogate_escape_reads_as_the_replacement_character() {
        let ex = Extractor::new(&paths(&["a", "b"]));
        assert_eq!(
            run(&ex, r#"{"a":"ev\ud800il","b":"x\uDC01"}"#).expect("ok"),
            vec![Some("ev\u{fffd}il".into()), Some("x\u{fffd}".into())]
        );
        // A pair is one character; a pair after a lone one is still a pair.
        assert_eq!(
            run(&ex, r#"{"a":"\ud83d\ude00","b":"\ud800\ud83d\ude00"}"#).expect("ok"),
            vec![Some("\u{1f600}".into()), Some("\u{fffd}\u{1f600}".into())]
        );
        // An escaped backslash before `u` is not an escape; off-path values are mended too.
        assert_eq!(
            run(&ex, r#"{"z":"\udfff","a":"\\ud800"}"#).expect("ok"),
            vec![Some("\\ud800".into()), None]
        );
        // Still broken after mending: the original error, which names the place.
        match run(&ex, r#"{"a":"\ud800",}"#) {
            Err(ExtractError::NotJson(m)) => assert!(m.contains("column"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(mend(r#"{"a":"\u00e9\n","b":1e308}"#), None);
    }

    #[test]
    fn a_number_beyond_a_float_reads_as_its_text() {
        let ex = Extractor::new(&paths(&["a", "b", "c"]));
        assert_eq!(
            run(&ex, r#"{"a":12.5e308,"z":[-1e999],"b":"1e999","c":1.5}"#).expect("ok"),
            vec![
                Some("12.5e308".into()),
                Some("1e999".into()),
                Some("1.5".into())
            ]
        );
        let digits = "9".repeat(400);
        assert_eq!(
            run(&ex, &format!(r#"{{"a":{digits}}}"#)).expect("ok"),
            vec![Some(digits), None, None]
        );
    }

    #[test]
    fn last_duplicate_key_wins_and_clears_the_subtree() {
        let ex = Extractor::new(&paths(&["a.b", "a.c"]));
        assert_eq!(
            run(&ex, r#"{"a":{"b":"1","c":"2"},"a":{"b":"3"}}"#).expect("ok"),
            vec![Some("3".into()), None]
        );
        assert_eq!(
            run(&ex, r#"{"a":{"b":"1"},"a":null}"#).expect("ok"),
            vec![None, None]
        );
    }

    #[test]
    fn same_path_twice_fills_both_slots() {
        let ex = Extractor::new(&paths(&["a", "b", "a"]));
        assert_eq!(
            run(&ex, r#"{"a":"x"}"#).expect("ok"),
            vec![Some("x".into()), None, Some("x".into())]
        );
    }

    /// The scanner's slots when it reads `line`, `None` when it gives up.
    fn scanned(ex: &Extractor, line: &str) -> Option<Vec<Option<String>>> {
        let mut out = Vec::new();
        out.resize(ex.slots, None);
        let mut visited = vec![0u64; ex.nodes.len().div_ceil(64)];
        let ascii = ex.scan(line.as_bytes(), true, &mut Vec::new());
        // The ASCII mode reads a line only when the other does, and only an ASCII one.
        assert!(!ascii || line.is_ascii(), "{line}");
        let read = ex.scan_into(line.as_bytes(), false, &mut out, &mut visited);
        assert!(read || !ascii, "{line}");
        read.then(|| out.into_iter().map(|v| v.map(Cow::into_owned)).collect())
    }

    /// serde_json's slots for `line`.
    fn parsed(ex: &Extractor, line: &str) -> Result<Vec<Option<String>>, ExtractError> {
        let mut out = Vec::new();
        out.resize(ex.slots, None);
        let mut visited = vec![0u64; ex.nodes.len().div_ceil(64)];
        ex.extract_serde(line, &mut out, &mut visited)?;
        Ok(out.into_iter().map(|v| v.map(Cow::into_owned)).collect())
    }

    #[test]
    fn the_scanner_reads_what_serde_json_reads_or_gives_up() {
        let ex = Extractor::new(&paths(&["a.b", "a.c", "d", "e", "r.0.x", "r.2", "k"]));
        let base = r#"{"x":[1,-2.5e+3,{"a":{"b":"no"}},[],{},"s\"q\\\/\b\f\n\r\t\u00e9"],"a":{"c":"3","b":"yes"},"d":true,"e":null,"r":[{"x":"first"},null,"third"],"k":false,"z":{"y":[true,false,null,0,0.5,1E9]}}"#;
        let mut lines: Vec<String> = vec![
            base.into(),
            r#"{"a":{"b":"1","c":"2"},"a":{"b":"3"}}"#.into(),
            r#"{"a":{"b":"1"},"a":null}"#.into(),
            r#" {"d" : "x" , "d":"y"} "#.into(),
            r#"{"d":1}"#.into(),
            r#"{"d":"e\u0301"}"#.into(),
            r#"{"a\u0062":"x"}"#.into(),
            r#"{"x":01}"#.into(),
            r#"{"x":1.}"#.into(),
            r#"{"x":[1,]}"#.into(),
            r#"{"x":{"a":1,}}"#.into(),
            r#"{"x":"\x"}"#.into(),
            r#"{"x":"\u12g4"}"#.into(),
            "{\"x\":\"tab\there\"}".into(),
            r#"{"x":tru}"#.into(),
            r#"{"x":nul,"d":"y"}"#.into(),
            r#"{}"#.into(),
            "{\"d\":\"ra\u{e9}l\",\"x\":\"\u{fc}ber\"}".into(),
            "{\"x\":\"\u{fc}\",\"d\":\"plain\"}".into(),
            r#"{"r":[]}"#.into(),
            r#"{"r":"x"}"#.into(),
            format!(
                r#"{{"z":{}1{},"d":"deep"}}"#,
                "[".repeat(70),
                "]".repeat(70)
            ),
            format!(
                r#"{{"z":{}1{},"d":"deep"}}"#,
                "[".repeat(64),
                "]".repeat(64)
            ),
        ];
        // Every prefix of the sample, and the sample with each byte deleted or doubled.
        for i in 0..base.len() {
            lines.push(base[..i].into());
            lines.push(format!("{}{}", &base[..i], &base[i + 1..]));
            lines.push(format!("{}{}", &base[..i + 1], &base[i..]));
        }
        let mut read = 0;
        for line in &lines {
            let serde = parsed(&ex, line);
            if let Some(got) = scanned(&ex, line) {
                read += 1;
                assert_eq!(Ok(got), serde, "{line}");
            }
        }
        assert!(scanned(&ex, base).is_some());
        assert_eq!(
            scanned(&ex, "{\"x\":\"\u{fc}\",\"d\":\"plain\"}").map(|v| v[2].clone()),
            Some(Some("plain".into()))
        );
        assert!(read > lines.len() / 10, "{read} of {}", lines.len());
    }

    #[test]
    fn deep_nesting_off_path_does_not_overflow() {
        let ex = Extractor::new(&paths(&["a"]));
        let deep = format!(
            "{{\"z\":{}{},\"a\":\"ok\"}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(run(&ex, &deep).expect("ok"), vec![Some("ok".into())]);
        // A path's value that is itself deeply nested is skipped, not descended into.
        let deep_on_path = format!(
            "{{\"a\":{}1{}}}",
            "{\"a\":".repeat(100_000),
            "}".repeat(100_000)
        );
        assert_eq!(run(&ex, &deep_on_path).expect("ok"), vec![None]);
    }
}
