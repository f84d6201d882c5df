//! Principals as Kafka and the IAM API spell them: `User:sa-…`, `User:u-…`,
//! `User:pool-…`, `User:*`, `Group:…`.

use std::fmt;

/// A principal. Users, service accounts and identity pools are all `User:` principals
/// (as in the hosted anchor); `Group:` names a group of users.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// `User:<id>`
    User(String),
    /// `Group:<id>`
    Group(String),
    /// `User:*`: every authenticated principal.
    AnyUser,
}

/// Why a principal string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("principal must look like `User:<id>` or `Group:<id>`, got `{0}`")]
pub struct PrincipalError(pub String);

impl Principal {
    /// Parse `User:x` / `Group:x` / `User:*`.
    pub fn parse(s: &str) -> Result<Self, PrincipalError> {
        let bad = || PrincipalError(s.chars().take(80).collect());
        let (kind, name) = s.split_once(':').ok_or_else(bad)?;
        if name.is_empty()
            || name.len() > 255
            || name.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(bad());
        }
        match (kind, name) {
            ("User", "*") => Ok(Principal::AnyUser),
            ("User", n) => Ok(Principal::User(n.to_owned())),
            ("Group", n) if n != "*" => Ok(Principal::Group(n.to_owned())),
            _ => Err(bad()),
        }
    }

    /// The user principal of an account id.
    pub fn user(id: impl Into<String>) -> Self {
        Principal::User(id.into())
    }

    /// The id after `User:` / `Group:` (`*` for [`Principal::AnyUser`]).
    pub fn name(&self) -> &str {
        match self {
            Principal::User(n) | Principal::Group(n) => n,
            Principal::AnyUser => "*",
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(n) => write!(f, "User:{n}"),
            Principal::Group(n) => write!(f, "Group:{n}"),
            Principal::AnyUser => f.write_str("User:*"),
        }
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        for s in ["User:sa-abc", "User:*", "Group:group-x", "User:pool-1"] {
            assert_eq!(Principal::parse(s).map(|p| p.to_string()), Ok(s.to_owned()));
        }
        for s in ["sa-abc", "User:", "Role:x", "Group:*", "User:a b"] {
            assert!(Principal::parse(s).is_err(), "{s}");
        }
    }
}
