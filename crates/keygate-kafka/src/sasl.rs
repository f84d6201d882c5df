//! SASL tokens (reference/kafka-authz.md).

/// A PLAIN token's credentials.
#[derive(PartialEq, Eq)]
pub struct Plain {
    /// The authentication id: the API key.
    pub username: String,
    /// The password: the secret.
    pub password: String,
}

impl std::fmt::Debug for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plain({}, [redacted])", self.username)
    }
}

/// Parse `[authzid] NUL authcid NUL passwd`. A non-empty authzid must equal authcid.
pub fn parse_plain(token: &[u8]) -> Option<Plain> {
    let mut parts = token.split(|b| *b == 0);
    let (authzid, authcid, passwd) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || passwd.is_empty() {
        return None;
    }
    if !authzid.is_empty() && authzid != authcid {
        return None;
    }
    Some(Plain {
        username: String::from_utf8(authcid.to_vec()).ok()?,
        password: String::from_utf8(passwd.to_vec()).ok()?,
    })
}

/// An OAUTHBEARER client first message (RFC 7628 §3.1, KIP-255).
#[derive(PartialEq, Eq)]
pub struct OAuthBearer {
    /// The bearer token.
    pub token: String,
    /// SASL extensions (`logicalCluster`, `identityPoolId`, …).
    pub extensions: Vec<(String, String)>,
}

impl std::fmt::Debug for OAuthBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OAuthBearer([redacted], {:?})", self.extensions)
    }
}

impl OAuthBearer {
    /// An extension's value.
    pub fn extension(&self, key: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse `n,[a=authzid],\x01auth=Bearer <token>\x01[key=value\x01]*\x01`.
pub fn parse_oauthbearer(msg: &[u8]) -> Option<OAuthBearer> {
    let msg = std::str::from_utf8(msg).ok()?;
    // GS2 header: no channel binding, optional authzid.
    let rest = msg.strip_prefix("n,")?;
    let (_authzid, rest) = rest.split_once(',')?;
    let body = rest.strip_prefix('\x01')?.strip_suffix("\x01\x01")?;
    let mut token = None;
    let mut extensions = Vec::new();
    for kv in body.split('\x01') {
        let (k, v) = kv.split_once('=')?;
        if k == "auth" {
            let (scheme, t) = v.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") || t.is_empty() || token.is_some() {
                return None;
            }
            token = Some(t.to_owned());
        } else {
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphabetic()) {
                return None;
            }
            extensions.push((k.to_owned(), v.to_owned()));
        }
    }
    Some(OAuthBearer {
        token: token?,
        extensions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauthbearer_messages() {
        let m = parse_oauthbearer(
            b"n,,\x01auth=Bearer abc.def.ghi\x01logicalCluster=lkc-1\x01identityPoolId=pool-2\x01\x01",
        )
        .expect("parse");
        assert_eq!(m.token, "abc.def.ghi");
        assert_eq!(m.extension("logicalCluster"), Some("lkc-1"));
        assert_eq!(m.extension("identityPoolId"), Some("pool-2"));
        assert!(parse_oauthbearer(b"n,a=me,\x01auth=Bearer t\x01\x01").is_some());
        for bad in [
            &b"n,,\x01auth=Bearer t\x01"[..],
            b"y,,\x01auth=Bearer t\x01\x01",
            b"n,,\x01auth=Basic t\x01\x01",
            b"n,,\x01x1=y\x01auth=Bearer t\x01\x01",
            b"n,,\x01\x01",
            b"\x01",
        ] {
            assert!(parse_oauthbearer(bad).is_none(), "{bad:?}");
        }
        assert!(!format!("{m:?}").contains("abc"));
    }

    #[test]
    fn plain_tokens() {
        let p = parse_plain(b"\0KEY\0secret").expect("plain");
        assert_eq!(
            (p.username.as_str(), p.password.as_str()),
            ("KEY", "secret")
        );
        assert!(parse_plain(b"KEY\0KEY\0secret").is_some());
        assert!(parse_plain(b"OTHER\0KEY\0secret").is_none());
        assert!(parse_plain(b"\0KEY").is_none());
        assert!(parse_plain(b"\0\0secret").is_none());
        assert!(parse_plain(b"\0KEY\0secret\0extra").is_none());
        assert!(!format!("{p:?}").contains("secret"));
    }
}
