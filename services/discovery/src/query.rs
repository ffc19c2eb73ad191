//! A find request checked: `q` (the task, in words) and `k` (how many
//! results). Every refusal is `INVALID_QUERY` and names the parameter, in
//! its message and in the `field` detail.

use crate::tokens;
use tessera_error::Error;

/// The longest `q`, in characters, after trimming.
pub const MAX_QUERY_CHARS: usize = 500;

/// The most search terms `q` may have (stop words not counted).
pub const MAX_QUERY_TERMS: usize = 32;

/// The most results a find answers.
pub const MAX_K: u32 = 25;

/// The results a find answers when `k` is 0 (absent).
pub const DEFAULT_K: u32 = 5;

/// The error reason of every refused find.
pub const INVALID_QUERY: &str = "INVALID_QUERY";

/// A valid find: its distinct terms, and how many results to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Distinct terms, sorted (so a query's scores add up in one order).
    pub terms: Vec<String>,
    /// 1..=[`MAX_K`].
    pub k: usize,
}

impl Query {
    /// Checks `q` and `k` (0 means [`DEFAULT_K`]).
    pub fn parse(q: &str, k: u32) -> Result<Query, Error> {
        let terms = terms(q, "q")?;
        let k = match k {
            0 => DEFAULT_K,
            1..=MAX_K => k,
            _ => {
                return Err(refuse(
                    "k",
                    format!("k is {k}; it must be between 1 and {MAX_K}"),
                ))
            }
        };
        Ok(Query {
            terms,
            k: k as usize,
        })
    }
}

/// The distinct search terms of a task in words, sorted (so a query's
/// scores add up in one order). Refused naming `parameter` when the task is
/// empty, longer than [`MAX_QUERY_CHARS`] characters or more than
/// [`MAX_QUERY_TERMS`] terms.
pub fn terms(q: &str, parameter: &str) -> Result<Vec<String>, Error> {
    let q = q.trim();
    if q.is_empty() {
        return Err(refuse(
            parameter,
            format!("{parameter} is required: the task to find a tool for"),
        ));
    }
    let chars = q.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(refuse(
            parameter,
            format!(
                "{parameter} is {chars} characters long; at most {MAX_QUERY_CHARS} are allowed"
            ),
        ));
    }
    let mut terms = tokens::terms(q);
    if terms.len() > MAX_QUERY_TERMS {
        return Err(refuse(
            parameter,
            format!(
                "{parameter} has {} search terms; at most {MAX_QUERY_TERMS} are allowed",
                terms.len()
            ),
        ));
    }
    terms.sort_unstable();
    terms.dedup();
    Ok(terms)
}

/// An `INVALID_QUERY` refusal naming `parameter` in its `field` detail.
pub(crate) fn refuse(parameter: &str, message: impl Into<String>) -> Error {
    Error::invalid(INVALID_QUERY, message).with_detail("field", parameter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_error::ErrorKind;

    fn refused(q: &str, k: u32) -> Error {
        Query::parse(q, k).expect_err("must be refused")
    }

    fn assert_names(error: &Error, parameter: &str) {
        assert_eq!(error.kind, ErrorKind::InvalidArgument);
        assert_eq!(error.reason, INVALID_QUERY);
        assert!(
            error.message.starts_with(&format!("{parameter} ")),
            "{}",
            error.message
        );
        assert_eq!(
            error.details.get("field").map(String::as_str),
            Some(parameter)
        );
    }

    #[test]
    fn q_is_required_and_bounded() {
        assert_names(&refused("", 5), "q");
        assert_names(&refused(" \t\n ", 5), "q");
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        let error = refused(&long, 5);
        assert_names(&error, "q");
        assert!(error.message.contains("501"), "{}", error.message);
        // 500 characters (multi-byte ones count once), padded with blanks
        // that trimming removes, are fine.
        let at_limit = format!("  {}  ", "é".repeat(MAX_QUERY_CHARS));
        assert!(Query::parse(&at_limit, 5).is_ok());
    }

    #[test]
    fn at_most_32_terms() {
        let words = |n: usize| {
            (0..n)
                .map(|i| format!("word{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(Query::parse(&words(32), 5).unwrap().terms.len(), 32);
        let error = refused(&words(33), 5);
        assert_names(&error, "q");
        assert!(error.message.contains("33"), "{}", error.message);
        // Stop words are not terms.
        let padded = format!("{} the of and to", words(32));
        assert!(Query::parse(&padded, 5).is_ok());
    }

    #[test]
    fn k_defaults_to_5_and_is_at_most_25() {
        assert_eq!(Query::parse("hash", 0).unwrap().k, DEFAULT_K as usize);
        assert_eq!(Query::parse("hash", 1).unwrap().k, 1);
        assert_eq!(Query::parse("hash", 25).unwrap().k, 25);
        assert_names(&refused("hash", 26), "k");
        assert_names(&refused("hash", u32::MAX), "k");
    }

    #[test]
    fn terms_are_distinct_and_sorted() {
        let query = Query::parse("Hash hashes, then HASH a text", 3).unwrap();
        assert_eq!(query.terms, ["hash", "text"]);
    }
}
