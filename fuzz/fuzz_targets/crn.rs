//! CRNs and CRN patterns: parsed or refused, and what parses prints back to
//! something that parses to the same thing.
#![no_main]

use keygate_core::crn::CrnPattern;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = CrnPattern::parse(s) {
        let again = CrnPattern::parse(&p.to_string()).expect("a printed pattern parses");
        assert_eq!(again.to_string(), p.to_string());
    }
    let _ = CrnPattern::parse_exact(s);
});
