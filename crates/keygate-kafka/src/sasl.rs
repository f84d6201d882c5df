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

#[cfg(test)]
mod tests {
    use super::*;

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
