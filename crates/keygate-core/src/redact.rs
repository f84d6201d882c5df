//! What text a client sent may be written to a log line or an audit record.
//!
//! Why: usernames, e-mail addresses, pool ids and client ids are chosen by whoever is
//! on the other end. A client that swaps username and password puts its secret in the
//! "username"; a hostile one sends half a megabyte of it on every attempt. So a field
//! with a fixed shape (a key id) is written only when it has that shape, otherwise as
//! a fixed marker with its length; free text is capped, and anything in it that looks
//! like a keygate secret (`kgs_` + 49 base62 characters whose CRC32 checks out) or a
//! JWT is replaced wherever it would be written.

use crate::secret::{self, KeyId, SECRET_LEN, SECRET_PREFIX};
use std::borrow::Cow;

/// The longest free-text field written (characters).
pub const MAX_TEXT: usize = 256;

const SECRET_MARK: &str = "<redacted secret>";
const JWT_MARK: &str = "<redacted token>";

/// A key id as given, or `<not a key id: N bytes>`.
pub fn key_id(s: &str) -> Cow<'_, str> {
    if KeyId::parse(s).is_some() {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("<not a key id: {} bytes>", s.len()))
    }
}

/// `s` when `is_shaped` accepts it (and it is short), else `<not a NAME: N bytes>`.
pub fn shaped<'a>(s: &'a str, name: &str, is_shaped: impl Fn(&str) -> bool) -> Cow<'a, str> {
    if s.len() <= MAX_TEXT && is_shaped(s) && !contains_secret(s) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("<not {name}: {} bytes>", s.len()))
    }
}

/// An e-mail address as typed, or a marker: something with one `@`, no spaces or
/// control characters, at most 254 bytes, and no secret in it.
pub fn email(s: &str) -> Cow<'_, str> {
    shaped(s, "an e-mail address", |s| {
        s.len() <= 254
            && s.matches('@').count() == 1
            && !s.starts_with('@')
            && !s.ends_with('@')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// Free text capped at [`MAX_TEXT`] characters, control characters replaced, with
/// secrets and JWTs replaced by markers.
pub fn text(s: &str) -> Cow<'_, str> {
    let clean = s.len() <= MAX_TEXT && !s.chars().any(char::is_control) && !contains_secret(s);
    if clean {
        return Cow::Borrowed(s);
    }
    let capped: String = scrub(s)
        .chars()
        .take(MAX_TEXT)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > MAX_TEXT {
        Cow::Owned(format!("{capped}…<{} bytes>", s.len()))
    } else {
        Cow::Owned(capped)
    }
}

/// Whether `s` contains a keygate secret or something shaped like a JWT.
pub fn contains_secret(s: &str) -> bool {
    find_secret(s, 0).is_some() || find_jwt(s, 0).is_some()
}

/// `s` with every keygate secret and every JWT-shaped token replaced by a marker.
pub fn scrub(s: &str) -> Cow<'_, str> {
    if !contains_secret(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    loop {
        let next = [
            find_secret(s, at).map(|r| (r, SECRET_MARK)),
            find_jwt(s, at).map(|r| (r, JWT_MARK)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|((start, _), _)| *start);
        let Some(((start, end), mark)) = next else {
            out.push_str(&s[at..]);
            return Cow::Owned(out);
        };
        out.push_str(&s[at..start]);
        out.push_str(mark);
        at = end;
    }
}

fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// The next well-formed secret at or after `from`: (start, end).
fn find_secret(s: &str, from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(i) = s.get(at..)?.find(SECRET_PREFIX) {
        let start = at + i;
        let end = start + SECRET_LEN;
        if let Some(candidate) = s.get(start..end) {
            let bounded = s.as_bytes().get(end).is_none_or(|b| !is_base62(*b));
            if bounded && secret::is_well_formed(candidate) {
                return Some((start, end));
            }
        }
        at = start + SECRET_PREFIX.len();
    }
    None
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The next JWT-shaped token (`eyJ…` header, three base64url parts separated by dots,
/// a signature part that may be empty) at or after `from`: (start, end).
fn find_jwt(s: &str, from: usize) -> Option<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut at = from;
    while let Some(i) = s.get(at..)?.find("eyJ") {
        let start = at + i;
        let mut end = start;
        let mut dots = 0;
        while end < bytes.len() && (is_b64url(bytes[end]) || (bytes[end] == b'.' && dots < 2)) {
            if bytes[end] == b'.' {
                dots += 1;
            }
            end += 1;
        }
        if dots == 2 && end - start >= 16 {
            return Some((start, end));
        }
        at = start + 3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    #[test]
    fn secrets_and_tokens_are_found_and_replaced() {
        let secret = Secret::generate(&mut rand::rngs::OsRng);
        let s = secret.expose();
        let line = format!("user={s} next");
        assert!(contains_secret(&line));
        assert_eq!(scrub(&line), format!("user={SECRET_MARK} next"));
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        assert_eq!(scrub(&format!("[{jwt}]")), format!("[{JWT_MARK}]"));
        // A broken checksum is not a secret (nothing to protect, nothing replaced).
        let mut broken = s.to_owned();
        broken.replace_range(10..11, if &s[10..11] == "a" { "b" } else { "a" });
        assert!(!contains_secret(&broken));
        assert_eq!(scrub("plain text"), "plain text");
    }

    #[test]
    fn fields_with_a_shape_are_written_only_with_it() {
        assert_eq!(key_id("ABCDEFGHIJKLMNOP"), "ABCDEFGHIJKLMNOP");
        let secret = Secret::generate(&mut rand::rngs::OsRng);
        assert_eq!(key_id(secret.expose()), "<not a key id: 53 bytes>");
        assert_eq!(email("dev@example.com"), "dev@example.com");
        assert_eq!(email(secret.expose()), "<not an e-mail address: 53 bytes>");
        let long = "x".repeat(600_000);
        assert_eq!(key_id(&long), "<not a key id: 600000 bytes>");
        let t = text(&long);
        assert!(t.len() < 400, "{}", t.len());
        assert_eq!(text("line\nbreak"), "line?break");
    }
}
