//! The export/import document (`keygate import` reads it from a file an operator was
//! handed): any bytes are refused with an error or read into a state — never a panic.
//! A document that reads is written back, and what is written reads again into a
//! state that writes the same document: nothing is lost or changed by a round trip.
#![no_main]

use keygate_store::document::Document;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = Document::parse(text) else {
        return;
    };
    let (check, at) = (doc.pepper_check.clone(), doc.exported_at);
    let Ok((state, passwords)) = doc.into_state() else {
        return;
    };
    let written = write(state, passwords, &check, at);
    let (state, passwords) = Document::parse(&written)
        .expect("a written document parses")
        .into_state()
        .expect("a written document reads");
    assert_eq!(
        written,
        write(state, passwords, &check, at),
        "round trip changed the document"
    );
});

fn write(
    state: keygate_store::FullState,
    passwords: Vec<(String, String)>,
    check: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut doc = Document::from_state(state, passwords, check.into())
        .expect("a read state has an organization");
    doc.exported_at = at;
    serde_json::to_string(&doc).expect("a document serializes")
}
