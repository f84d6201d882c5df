//! Bad input never panics: arbitrary strings as tokens, arbitrary bytes as key sets
//! and filters — each is refused (or matches nothing) with an error.

use keygate_oauth::{Directory, Filter, Jwks};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_tokens_are_refused_without_panicking(s in ".{0,400}") {
        let dir = Directory::default();
        prop_assert!(dir.authenticate(&s, None, 0, true).is_err());
    }

    #[test]
    fn token_shaped_garbage_is_refused(a in "[A-Za-z0-9_=-]{0,60}", b in "[A-Za-z0-9_=-]{0,60}", c in "[A-Za-z0-9_=-]{0,60}") {
        let dir = Directory::default();
        let token = format!("{a}.{b}.{c}");
        prop_assert!(dir.authenticate(&token, Some("pool-x"), 0, true).is_err());
    }

    #[test]
    fn arbitrary_key_sets_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Jwks::parse(&bytes);
    }

    #[test]
    fn arbitrary_filters_compile_or_fail_cleanly(src in ".{0,120}") {
        if let Ok(f) = Filter::compile(&src) {
            let _ = f.matches(&serde_json::json!({"aud": "kafka", "groups": ["a"], "n": 1}));
        }
    }
}

#[test]
fn deeply_nested_filters_at_the_length_limit_do_not_overflow() {
    for src in [
        "(".repeat(300),
        format!("{}true{}", "(".repeat(149), ")".repeat(149)),
        "!".repeat(299) + "x",
        "-".repeat(299) + "1",
        "[".repeat(300),
        format!("{}1{}", "[".repeat(149), "]".repeat(149)),
    ] {
        if let Ok(f) = Filter::compile(&src) {
            let _ = f.matches(&serde_json::json!({}));
        }
    }
}
