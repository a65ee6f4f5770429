//! The items of Subversion's `ra_svn` protocol (libsvn_ra_svn/protocol §1): words, numbers,
//! length-prefixed strings and parenthesised lists, each followed by whitespace. Only the
//! handshake is read here (greetings, authentication); after it the stream is relayed as bytes.

use crate::limits::{SVN_MAX_DEPTH, SVN_MAX_ITEM};

/// One protocol item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// `ALPHA *(ALPHA / DIGIT / "-")`.
    Word(String),
    /// `1*DIGIT`.
    Number(u64),
    /// `len ":" bytes`.
    Str(Vec<u8>),
    /// `"(" items ")"`.
    List(Vec<Item>),
}

/// Why bytes are not an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// Not the protocol's syntax.
    #[error("malformed svn protocol item")]
    Malformed,
    /// Longer or deeper than a handshake item may be (`SVN_MAX_ITEM`, `SVN_MAX_DEPTH`).
    #[error("svn protocol item too large")]
    TooLarge,
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\n'
}

/// Parses one item at the start of `buf` (leading whitespace skipped): `Ok(Some((item,
/// used)))`, or `Ok(None)` when `buf` ends before the item does (read more, up to
/// `SVN_MAX_ITEM` bytes in all).
pub fn parse(buf: &[u8]) -> Result<Option<(Item, usize)>, ItemError> {
    let mut at = 0usize;
    match item(buf, &mut at, 0) {
        Ok(it) => Ok(Some((it, at))),
        Err(Short) if buf.len() >= SVN_MAX_ITEM => Err(ItemError::TooLarge),
        Err(Short) => Ok(None),
        Err(Bad(e)) => Err(e),
    }
}

enum Stop {
    Short,
    Bad(ItemError),
}
use Stop::{Bad, Short};

fn byte(buf: &[u8], at: usize) -> Result<u8, Stop> {
    buf.get(at).copied().ok_or(Short)
}

/// The mandatory whitespace after an item (at least one; more is skipped).
fn spaces(buf: &[u8], at: &mut usize) -> Result<(), Stop> {
    if !is_space(byte(buf, *at)?) {
        return Err(Bad(ItemError::Malformed));
    }
    while buf.get(*at).copied().is_some_and(is_space) {
        *at = at.saturating_add(1);
    }
    Ok(())
}

fn item(buf: &[u8], at: &mut usize, depth: usize) -> Result<Item, Stop> {
    while buf.get(*at).copied().is_some_and(is_space) {
        *at = at.saturating_add(1);
    }
    if *at > SVN_MAX_ITEM {
        return Err(Bad(ItemError::TooLarge));
    }
    let first = byte(buf, *at)?;
    let it = if first == b'(' {
        if depth >= SVN_MAX_DEPTH {
            return Err(Bad(ItemError::TooLarge));
        }
        *at = at.saturating_add(1);
        spaces(buf, at)?;
        let mut items = Vec::new();
        while byte(buf, *at)? != b')' {
            items.push(item(buf, at, depth.saturating_add(1))?);
        }
        *at = at.saturating_add(1);
        Item::List(items)
    } else if first.is_ascii_digit() {
        let mut n: u64 = 0;
        while let Some(d) = buf.get(*at).copied().filter(u8::is_ascii_digit) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d.saturating_sub(b'0'))))
                .ok_or(Bad(ItemError::Malformed))?;
            *at = at.saturating_add(1);
        }
        if byte(buf, *at)? == b':' {
            let len = usize::try_from(n).map_err(|_| Bad(ItemError::TooLarge))?;
            if len > SVN_MAX_ITEM {
                return Err(Bad(ItemError::TooLarge));
            }
            let start = at.saturating_add(1);
            let end = start.saturating_add(len);
            let s = buf.get(start..end).ok_or(Short)?;
            *at = end;
            Item::Str(s.to_vec())
        } else {
            Item::Number(n)
        }
    } else if first.is_ascii_alphabetic() {
        let start = *at;
        while buf
            .get(*at)
            .copied()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            *at = at.saturating_add(1);
        }
        let w = buf.get(start..*at).unwrap_or_default();
        Item::Word(String::from_utf8_lossy(w).into_owned())
    } else {
        return Err(Bad(ItemError::Malformed));
    };
    spaces(buf, at)?;
    Ok(it)
}

impl Item {
    /// Appends the item and its trailing space.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Item::Word(w) => out.extend_from_slice(w.as_bytes()),
            Item::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Item::Str(s) => {
                out.extend_from_slice(s.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(s);
            }
            Item::List(items) => {
                out.extend_from_slice(b"( ");
                for i in items {
                    i.encode(out);
                }
                out.push(b')');
            }
        }
        out.push(b' ');
    }

    /// The encoded item.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// The list's items, if it is one.
    pub fn list(&self) -> Option<&[Item]> {
        match self {
            Item::List(l) => Some(l),
            _ => None,
        }
    }

    /// The word, if it is one.
    pub fn word(&self) -> Option<&str> {
        match self {
            Item::Word(w) => Some(w),
            _ => None,
        }
    }

    /// The string's bytes, if it is one.
    pub fn str(&self) -> Option<&[u8]> {
        match self {
            Item::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if it is one.
    pub fn number(&self) -> Option<u64> {
        match self {
            Item::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// A command response's parameters: `( success params )` → `params`; a `failure`
    /// (or anything else) → `None`.
    pub fn success(&self) -> Option<&[Item]> {
        match self.list()? {
            [Item::Word(w), Item::List(params), ..] if w == "success" => Some(params),
            _ => None,
        }
    }
}

/// A word item (a shorthand for building messages).
pub fn word(w: &str) -> Item {
    Item::Word(w.to_owned())
}

/// A string item.
pub fn string(s: &[u8]) -> Item {
    Item::Str(s.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svnserve_greeting_and_client_response_parse() {
        let greeting = b"( success ( 2 2 ( ) ( edit-pipeline svndiff1 list ) ) ) ";
        let (g, used) = parse(greeting).unwrap().unwrap();
        assert_eq!(used, greeting.len());
        let params = g.success().unwrap();
        assert_eq!(params[0], Item::Number(2));
        assert_eq!(params[3].list().unwrap()[2], word("list"));
        assert_eq!(g.to_bytes(), greeting);
        let resp = b"( 2 ( edit-pipeline ) 27:svn+ssh://h/team/proj/trunk 10:SVN/1.14.2 ( ) ) \n";
        let (r, used) = parse(resp).unwrap().unwrap();
        assert_eq!(used, resp.len());
        assert_eq!(
            r.list().unwrap()[2].str(),
            Some(&b"svn+ssh://h/team/proj/trunk"[..])
        );
        // Incomplete: more is needed; every prefix says so.
        for n in 0..resp.len() - 1 {
            assert_eq!(parse(&resp[..n]), Ok(None), "{n}");
        }
    }

    #[test]
    fn malformed_and_oversized_items_are_refused() {
        for bad in [
            &b") "[..],
            b"(x) ",
            b"( 1:ab) ",
            b"99999999999999999999999 ",
            b"*",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "( ".repeat(SVN_MAX_DEPTH + 1);
        assert_eq!(parse(deep.as_bytes()), Err(ItemError::TooLarge));
        let long = format!("{}:", SVN_MAX_ITEM + 1);
        assert_eq!(parse(long.as_bytes()), Err(ItemError::TooLarge));
        assert_eq!(
            parse(&vec![b' '; SVN_MAX_ITEM + 1]),
            Err(ItemError::TooLarge)
        );
    }

    /// The committed fuzz seeds are what svnserve and svn send: each parses whole.
    #[test]
    fn the_fuzz_seeds_parse_whole() {
        for seed in [
            &include_bytes!("../../fuzz/corpus/svn_item/seed-greeting")[..],
            include_bytes!("../../fuzz/corpus/svn_item/seed-client-response"),
            include_bytes!("../../fuzz/corpus/svn_item/seed-auth-request"),
            include_bytes!("../../fuzz/corpus/svn_item/seed-cram-step"),
            include_bytes!("../../fuzz/corpus/svn_item/seed-failure"),
        ] {
            let (it, used) = parse(seed).unwrap().unwrap();
            assert_eq!((used, it.to_bytes()), (seed.len(), seed.to_vec()));
        }
    }
}
