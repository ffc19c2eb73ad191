//! Text to search terms, the same way for documents and queries: lower-case,
//! split on anything not alphanumeric (so `json-schema-validate` and
//! `memory.cas` fall apart into their words), drop English stop words, and
//! strip common suffixes so `hashes`/`hash` and `converting`/`convert` are one
//! term.
//!
//! A two-part hyphenated word (`SHA-256`, `CRC-32`, `snake-case`) also
//! yields its parts written together (`sha256`), since names and slugs spell
//! such words both ways.

/// Words too common to tell tools apart. Kept small: a tool's own vocabulary
/// (`get`, `list`, `key`, `to` inside `kilometers-to-miles`, ...) must stay
/// searchable unless it carries no meaning at all.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "any", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from",
    "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "need", "of", "on", "one", "or",
    "our", "please", "s", "should", "so", "some", "t", "than", "that", "the", "their", "then",
    "there", "these", "this", "those", "to", "want", "was", "we", "what", "when", "where", "which",
    "will", "with", "you", "your",
];

/// Suffixes stripped, in three steps (a light Porter stemmer): plurals,
/// then verb and noun endings, then a final `e`. Each step strips at most
/// one suffix, the first in its list that leaves at least [`MIN_STEM`]
/// characters, so short words (`cas`, `case`, `use`) are kept whole; `ss`
/// is kept (`address` is no plural).
const STEPS: &[&[(&str, &str)]] = &[
    &[
        ("sses", "ss"),
        ("ies", "y"),
        ("ss", "ss"),
        ("es", ""),
        ("s", ""),
    ],
    &[("ing", ""), ("ion", ""), ("ed", ""), ("er", "")],
    &[("e", "")],
];

/// The fewest characters a stem keeps.
const MIN_STEM: usize = 4;

/// Whether `word` (lower-case) carries no meaning for search.
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// The search terms of `text`, in order, repeats kept (a document's term
/// frequencies count them).
pub fn terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    for compound in text.split(|c: char| !(c.is_alphanumeric() || c == '-')) {
        let parts: Vec<String> = compound
            .split('-')
            .filter(|part| !part.is_empty())
            .map(str::to_lowercase)
            .collect();
        for part in &parts {
            push_term(&mut terms, part);
        }
        if let [first, second] = parts.as_slice() {
            push_term(&mut terms, &format!("{first}{second}"));
        }
    }
    terms
}

/// The lower-case words of `text` that are not stop words, unstemmed and
/// without repeats, in order: tags derived from a summary.
pub fn words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        let word = word.to_lowercase();
        if !word.is_empty() && !is_stop_word(&word) && !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

fn push_term(terms: &mut Vec<String>, word: &str) {
    if !is_stop_word(word) {
        terms.push(stem(word));
    }
}

/// `word` without its inflection: `encodings`, `encoded` and `encode` all
/// become `encod`.
pub fn stem(word: &str) -> String {
    let mut stem = word.to_string();
    for step in STEPS {
        for (suffix, replacement) in *step {
            if let Some(rest) = stem.strip_suffix(suffix) {
                if rest.chars().count() + replacement.chars().count() >= MIN_STEM {
                    stem = format!("{rest}{replacement}");
                    break;
                }
            }
        }
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflections_share_a_stem() {
        for (a, b) in [
            ("hashes", "hash"),
            ("converting", "convert"),
            ("converts", "convert"),
            ("converter", "convert"),
            ("encoding", "encode"),
            ("encoded", "encodes"),
            ("validation", "validate"),
            ("entries", "entry"),
            ("numbers", "number"),
            ("uuids", "uuid"),
            ("addresses", "address"),
            ("values", "value"),
            ("types", "type"),
            ("snakecases", "snakecase"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} / {b}");
        }
        // Short words stay whole: `case` must not become `cas`.
        assert_eq!(stem("case"), "case");
        assert_eq!(stem("cas"), "cas");
        assert_ne!(stem("cases"), stem("cas"));
        assert_eq!(stem("address"), "address");
        assert_eq!(stem("string"), "string");
    }

    #[test]
    fn text_splits_on_punctuation_lowercases_and_drops_stop_words() {
        assert_eq!(
            terms("Compare-and-swap the KEY of memory.cas"),
            ["compar", "swap", "key", "memory", "cas"]
        );
        assert_eq!(terms("json-schema-validate"), ["json", "schema", "validat"]);
        assert_eq!(terms("  "), Vec::<String>::new());
        assert_eq!(terms("the of and"), Vec::<String>::new());
    }

    #[test]
    fn a_two_part_hyphenated_word_is_also_one_term() {
        assert_eq!(terms("SHA-256 digest"), ["sha", "256", "sha256", "digest"]);
        assert_eq!(terms("snake-case"), ["snak", "case", "snakecas"]);
    }

    #[test]
    fn words_keep_their_spelling_once_each() {
        assert_eq!(
            words("list every key and value, every key"),
            ["list", "every", "key", "value"]
        );
    }
}
