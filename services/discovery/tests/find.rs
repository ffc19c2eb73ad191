//! Find over the real catalog (rankings a user would expect), its limits,
//! and a synthetic 10,000-document index.

use tessera_discovery::query::INVALID_QUERY;
use tessera_discovery::{entries, find, Document, Index};
use tessera_error::ErrorKind;

/// The slugs `find` answers for `q`, best first.
fn top(q: &str, k: u32) -> Vec<&'static str> {
    find(q, k)
        .unwrap_or_else(|error| panic!("{q:?} refused: {error}"))
        .into_iter()
        .map(|entry| entry.slug.as_str())
        .collect()
}

/// Asserts `slug` exists in the catalog (so a renamed tool fails loudly,
/// not as a ranking surprise) and is among the first `within` for `q`.
fn assert_ranks(q: &str, slug: &str, within: usize) {
    assert!(
        entries().iter().any(|entry| entry.slug == slug),
        "no entry {slug}"
    );
    let found = top(q, 10);
    let position = found.iter().position(|found| *found == slug);
    assert!(
        position.is_some_and(|position| position < within),
        "{q:?}: {slug} not in the first {within} of {found:?}"
    );
}

#[test]
fn a_named_digest_finds_its_own_tool_first() {
    assert_ranks("sha256 hash of some text", "sha256", 1);
    assert_ranks("SHA-256 of a string", "sha256", 1);
    assert_ranks("keccak hash for ethereum", "keccak256", 1);
}

#[test]
fn a_conversion_finds_the_unit_converter_first() {
    assert_ranks("convert kilometers to miles", "convert", 1);
    assert_ranks("converting temperature units", "convert", 1);
}

#[test]
fn an_encoding_finds_its_direction_first() {
    assert_ranks("base64 encode", "base64-encode", 1);
    assert_ranks("decode base64 text", "base64-decode", 1);
    assert_ranks("hex encoding of bytes", "hex-encode", 1);
}

#[test]
fn memory_operations_are_found() {
    assert_ranks("compare and swap lock", "memory.cas", 3);
    assert_ranks("increment a counter", "memory.incr", 1);
}

#[test]
fn json_tasks_find_their_tools() {
    assert_ranks("validate json schema", "json-schema-validate", 3);
    // Words, not their order, are ranked: "yaml to json" cannot tell
    // yaml-to-json from json-to-yaml, so both come first.
    assert_ranks("convert yaml to json", "yaml-to-json", 2);
    assert_ranks("convert yaml to json", "json-to-yaml", 2);
    assert_ranks("csv rows as json objects", "csv-to-json", 1);
    assert_ranks("pretty print json", "json-format", 1);
}

#[test]
fn an_id_request_finds_an_id_tool_first() {
    let first = top("uuid", 1);
    let entry = entries()
        .iter()
        .find(|entry| entry.slug == first[0])
        .unwrap();
    assert_eq!(entry.category, "ids", "{first:?}");
    assert_ranks("generate a random guid", "uuid", 1);
}

#[test]
fn answers_are_repeatable() {
    for q in ["hash", "json", "memory key", "convert", "time zone"] {
        let first = top(q, 25);
        assert!(!first.is_empty(), "{q:?}");
        assert_eq!(top(q, 25), first, "{q:?}");
    }
}

#[test]
fn equal_scores_are_ordered_by_slug() {
    // SHA-256 and SHA-512 are declared alike (same family, tags and
    // description but for the number), so "hash" scores them equal.
    let index = Index::new(entries().iter().map(|entry| entry.document()).collect());
    let slug = |doc: usize| entries()[doc].slug.as_str();
    let hits = index.find("hash", 25).unwrap();
    let score = |wanted: &str| {
        hits.iter()
            .find(|hit| slug(hit.doc) == wanted)
            .unwrap()
            .score
    };
    assert_eq!(score("sha256"), score("sha512"));
    let mut ties = 0;
    for q in [
        "hash",
        "digest",
        "hash digest in hex",
        "read one key",
        "list keys",
    ] {
        let hits = index.find(q, 25).unwrap();
        for pair in hits.windows(2) {
            assert!(pair[0].score >= pair[1].score, "{q:?}: {hits:?}");
            if pair[0].score == pair[1].score {
                ties += 1;
                assert!(slug(pair[0].doc) < slug(pair[1].doc), "{q:?}: {hits:?}");
            }
        }
        // The global find answers in the index's order.
        let found: Vec<&str> = top(q, 25);
        let indexed: Vec<&str> = hits.iter().map(|hit| slug(hit.doc)).collect();
        assert_eq!(found, indexed, "{q:?}");
    }
    assert!(ties > 0, "no equal scores to check");
}

#[test]
fn k_0_answers_5_and_limits_are_refused_naming_the_parameter() {
    assert_eq!(top("json", 0).len(), 5);
    assert_eq!(top("json", 2).len(), 2);
    let refusals = [
        (String::new(), 5, "q"),
        ("x".repeat(501), 5, "q"),
        (
            (0..33)
                .map(|i| format!("term{i}"))
                .collect::<Vec<_>>()
                .join(" "),
            5,
            "q",
        ),
        ("hash".to_string(), 26, "k"),
    ];
    for (q, k, parameter) in refusals {
        let error = find(&q, k).expect_err("must be refused");
        assert_eq!(error.kind, ErrorKind::InvalidArgument);
        assert_eq!(error.reason, INVALID_QUERY);
        assert!(
            error.message.starts_with(&format!("{parameter} ")),
            "{}",
            error.message
        );
    }
}

#[test]
fn a_unique_term_ranks_its_document_first_among_10000() {
    const WORDS: &[&str] = &[
        "hash", "encode", "decode", "json", "convert", "text", "time", "network", "memory",
        "value", "string", "number", "parse", "format", "validate", "check",
    ];
    let documents: Vec<Document> = (0..10_000)
        .map(|i| {
            let word = |n: usize| WORDS[(i * 7 + n * 3) % WORDS.len()];
            Document {
                slug: format!("tool-{i:05}"),
                name: format!("{} {}", word(0), word(1)),
                category: word(2).to_string(),
                description: format!(
                    "Does {} to a {} and a {}, then {} it.",
                    word(3),
                    word(4),
                    word(5),
                    word(6)
                ),
                tags: vec![word(7).to_string(), word(8).to_string()],
            }
        })
        .collect();
    let mut documents = documents;
    documents[7_321]
        .description
        .push_str(" Also zanzibarize it.");
    let index = Index::new(documents);
    assert_eq!(index.len(), 10_000);
    // The rare term outweighs common words that every document shares.
    let hits = index.find("zanzibarize the json text", 3).unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].doc, 7_321, "{hits:?}");
    assert!(hits[0].score > hits[1].score);
    // A term no document has answers nothing.
    assert!(index.find("quokka", 5).unwrap().is_empty());
}
