//! Request paths as the gateway authorizes them: split into segments, each
//! percent-decoded exactly once, and rebuilt in one canonical encoding for the
//! upstream. What was authorized is therefore exactly what is forwarded: a segment
//! that decodes to `..`, `.`, or something with a `/` or `\` in it (`..%2F..`), an
//! empty segment in the middle (`a//b`) or bytes that are not UTF-8 are refused before
//! any decision, never passed on for the upstream to interpret differently.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters kept as they are in a rebuilt segment (RFC 3986 unreserved, plus the
/// sub-delimiters and `:`/`@` that services use in names).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'@')
    .remove(b'!')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=');

/// Why a path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `.` or `..` (possibly percent-encoded).
    #[error("path segments `.` and `..` are not allowed")]
    DotSegment,
    /// A decoded segment holds `/`, `\` or a control character.
    #[error("a path segment may not encode `/`, `\\` or control characters")]
    EncodedSeparator,
    /// `a//b`.
    #[error("empty path segment")]
    Empty,
    /// Not UTF-8 once decoded.
    #[error("path is not UTF-8")]
    NotUtf8,
    /// Does not start with `/`.
    #[error("path must start with /")]
    NotAbsolute,
}

/// The decoded segments of `raw` (a trailing `/` is dropped).
pub fn segments(raw: &str) -> Result<Vec<String>, PathError> {
    let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    rest.split('/').map(segment).collect()
}

fn segment(raw: &str) -> Result<String, PathError> {
    if raw.is_empty() {
        return Err(PathError::Empty);
    }
    let s = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PathError::NotUtf8)?;
    if s == "." || s == ".." {
        return Err(PathError::DotSegment);
    }
    if s.chars()
        .any(|c| c == '/' || c == '\\' || c.is_control() && c != '\u{1f}')
    {
        return Err(PathError::EncodedSeparator);
    }
    Ok(s.into_owned())
}

/// `/a/b` from segments, each encoded canonically.
pub fn join(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        out.push('/');
        out.extend(utf8_percent_encode(s, SEGMENT));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn traversal_and_smuggled_separators_are_refused() {
        for (raw, err) in [
            ("/subjects/..%2F..", PathError::EncodedSeparator),
            ("/subjects/%2e%2e/x", PathError::DotSegment),
            ("/subjects/../config", PathError::DotSegment),
            ("/subjects/./x", PathError::DotSegment),
            ("/subjects/a%5Cb", PathError::EncodedSeparator),
            ("/subjects//versions", PathError::Empty),
            ("/subjects/%ff", PathError::NotUtf8),
            ("subjects", PathError::NotAbsolute),
            ("/subjects/a%00b", PathError::EncodedSeparator),
        ] {
            assert_eq!(segments(raw), Err(err), "{raw}");
        }
    }

    #[test]
    fn names_decode_once_and_re_encode_canonically() {
        let s = segments("/subjects/orders%20v1%3Avalue/versions/").expect("valid");
        assert_eq!(s, ["subjects", "orders v1:value", "versions"]);
        assert_eq!(join(&s), "/subjects/orders%20v1:value/versions");
        // Iceberg's namespace separator (0x1F) survives.
        let s = segments("/v1/namespaces/a%1Fb").expect("valid");
        assert_eq!(s[2], "a\u{1f}b");
        assert_eq!(join(&s), "/v1/namespaces/a%1Fb");
        // A double-encoded dot segment stays a name, encoded again as one.
        let s = segments("/subjects/%252e%252e").expect("valid");
        assert_eq!(s[1], "%2e%2e");
        assert_eq!(join(&s), "/subjects/%252e%252e");
    }

    proptest! {
        /// Whatever a client sends, the path that is forwarded decodes to the segments
        /// that were authorized.
        #[test]
        fn forwarded_path_round_trips(raw in "(/[a-zA-Z0-9%._~:@-]{1,12}){0,5}") {
            if let Ok(s) = segments(&raw) {
                prop_assert_eq!(segments(&join(&s)), Ok(s));
            }
        }
    }
}
