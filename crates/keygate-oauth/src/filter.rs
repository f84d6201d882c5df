//! Identity-pool filters: CEL expressions over a token's claims (`claims.aud ==
//! "kafka" && "payments" in claims.groups`), compiled once when saved and evaluated per
//! authentication.
//!
//! CEL is dynamically typed in the interpreter keygate uses, so "yields a bool" is
//! checked by evaluating the filter against empty claims when it is saved: an
//! expression that produces any other value there (`"x"`, `1 + 2`, `claims`) is
//! refused; one that fails there (it reads a claim) is accepted, and at run time
//! anything but `true` — an error included — does not match.

use std::sync::{Arc, LazyLock};

use cel::{Context, Env, Program, Value};

/// The standard library, built once: building it per evaluation cost more than the
/// evaluation itself.
static STDLIB: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Longest filter accepted, in characters (the hosted anchor's limit).
pub const MAX_FILTER_CHARS: usize = 300;

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Over [`MAX_FILTER_CHARS`].
    #[error("the filter is longer than {MAX_FILTER_CHARS} characters")]
    TooLong,
    /// It does not parse.
    #[error("the filter does not compile: {0}")]
    Compile(String),
    /// It yields something other than a bool.
    #[error("the filter must yield a bool, but yields a {0}")]
    NotBool(String),
}

/// A compiled filter.
#[derive(Clone)]
pub struct Filter {
    source: Arc<str>,
    program: Arc<Program>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Filter").field(&self.source).finish()
    }
}

impl Filter {
    /// Compile and check `source`.
    pub fn compile(source: &str) -> Result<Self, FilterError> {
        if source.chars().count() > MAX_FILTER_CHARS {
            return Err(FilterError::TooLong);
        }
        let program = Program::compile(source).map_err(|e| {
            FilterError::Compile(e.to_string().chars().take(400).collect::<String>())
        })?;
        let f = Filter {
            source: source.into(),
            program: Arc::new(program),
        };
        match f.eval(&serde_json::Value::Object(Default::default())) {
            Ok(Value::Bool(_)) | Err(_) => Ok(f),
            Ok(other) => Err(FilterError::NotBool(format!("{:?}", other.type_of()))),
        }
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn eval(&self, claims: &serde_json::Value) -> Result<Value, ()> {
        let value = cel::to_value(claims).map_err(drop)?;
        let value: Box<dyn cel::common::value::Val> = value.try_into().map_err(drop)?;
        let mut ctx = Context::with_env(STDLIB.clone());
        ctx.add_variable_as_val("claims", value);
        self.program.execute(&ctx).map_err(drop)
    }

    /// Whether the claims pass: only a `true` result does.
    pub fn matches(&self, claims: &serde_json::Value) -> bool {
        matches!(self.eval(claims), Ok(Value::Bool(true)))
    }

    /// Whether named values pass, each a top-level variable — the form of certificate
    /// pool filters (`CN == 'orders-app' && O == 'Acme'`). Only `true` does; a filter
    /// naming a field the certificate lacks fails to evaluate, and does not match.
    pub fn matches_fields(&self, fields: &serde_json::Map<String, serde_json::Value>) -> bool {
        let mut ctx = Context::with_env(STDLIB.clone());
        for (name, value) in fields {
            let Ok(v) = cel::to_value(value) else {
                return false;
            };
            let Ok(v): Result<Box<dyn cel::common::value::Val>, _> = v.try_into() else {
                return false;
            };
            ctx.add_variable_as_val(name.as_str(), v);
        }
        matches!(self.program.execute(&ctx), Ok(Value::Bool(true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn certificate_filters_read_top_level_fields() {
        let f = Filter::compile("CN == 'orders-app' && O == 'Acme' && 'orders.internal' in SAN")
            .expect("compiles");
        let fields = |cn: &str| {
            json!({"CN": cn, "O": "Acme", "SAN": ["orders.internal"]})
                .as_object()
                .cloned()
                .expect("object")
        };
        assert!(f.matches_fields(&fields("orders-app")));
        assert!(!f.matches_fields(&fields("intruder")));
        let mut no_o = fields("orders-app");
        no_o.remove("O");
        assert!(!f.matches_fields(&no_o), "a missing field does not match");
    }

    #[test]
    fn filters_compile_check_and_match() {
        let f = Filter::compile(r#"claims.aud == "kafka" && "payments" in claims.groups"#)
            .expect("compiles");
        assert!(f.matches(&json!({"aud":"kafka","groups":["payments","x"]})));
        assert!(!f.matches(&json!({"aud":"kafka","groups":["x"]})));
        assert!(!f.matches(&json!({"aud":"other","groups":["payments"]})));
        // A missing claim is an evaluation error: no match.
        assert!(!f.matches(&json!({})));
        assert!(Filter::compile("true").expect("true").matches(&json!({})));
        assert!(matches!(
            Filter::compile("claims.aud == "),
            Err(FilterError::Compile(_))
        ));
        assert!(matches!(
            Filter::compile(r#""just a string""#),
            Err(FilterError::NotBool(_))
        ));
        assert!(matches!(
            Filter::compile("1 + 2"),
            Err(FilterError::NotBool(_))
        ));
        assert_eq!(
            Filter::compile(&"true && ".repeat(40)).err(),
            Some(FilterError::TooLong)
        );
    }
}
