//! Lexical find: a BM25 index over documents' slug, name, category,
//! description and tags.
//!
//! Scoring is BM25 (k1 = 1.2, b = 0.75, IDF = ln(1 + (N - n + 0.5) / (n +
//! 0.5))) over one weighted bag of terms per document (the simple form of
//! BM25F): a term's frequency in a document is the sum, over fields, of the
//! field's weight times its count there, and a document's length is the
//! weighted sum of its fields' lengths. The weights ([`FIELD_WEIGHTS`]):
//!
//! - slug ×3 and name ×3: the few words that say what the tool *is*; a query
//!   naming a tool should find that tool first;
//! - tags ×2 and category ×2: chosen keywords and synonyms (`guid` for
//!   UUID) and the one word naming the tool's family (`hash`, `encoding`,
//!   `memory`), strong but looser than the name. The family matters: with
//!   it at ×1, "sha256 hash of some text" ranked the generic `hash` tool
//!   (slug and name `hash`) above `sha256`, whose only `hash` is its family;
//! - description ×1: longer prose that mentions many things in passing (the
//!   hash tool's description names SHA-256), so one mention counts least.
//!
//! The index is inverted (term → postings of document and weighted
//! frequency): a search reads only the postings of its own terms and adds
//! scores only for documents holding one of them, then keeps the top k with
//! a partial sort. Equal scores are ordered by slug, so answers are
//! deterministic.

use crate::query::Query;
use crate::tokens;
use std::cmp::Ordering;
use std::collections::HashMap;
use tessera_error::Error;

/// BM25's term-frequency saturation.
pub const K1: f64 = 1.2;

/// BM25's length normalization.
pub const B: f64 = 0.75;

/// How much one occurrence of a term counts, per field.
pub const FIELD_WEIGHTS: FieldWeights = FieldWeights {
    slug: 3.0,
    name: 3.0,
    tags: 2.0,
    category: 2.0,
    description: 1.0,
};

/// A weight per indexed field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldWeights {
    pub slug: f64,
    pub name: f64,
    pub tags: f64,
    pub category: f64,
    pub description: f64,
}

/// What is indexed of one findable thing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// Unique; breaks ties between equal scores.
    pub slug: String,
    pub name: String,
    pub category: String,
    pub description: String,
    pub tags: Vec<String>,
}

/// One result: the document's position in the indexed list, and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub doc: usize,
    pub score: f64,
}

#[derive(Debug, Clone, Copy)]
struct Posting {
    doc: u32,
    /// Weighted term frequency in the document.
    frequency: f64,
}

/// A BM25 index over a fixed list of documents.
#[derive(Debug)]
pub struct Index {
    slugs: Vec<String>,
    /// Term → the documents holding it, in document order.
    postings: HashMap<String, Vec<Posting>>,
    /// Per document: `K1 * (1 - B + B * length / average length)`, the
    /// length part of BM25's denominator.
    length_norms: Vec<f64>,
}

impl Index {
    /// Indexes `documents`; a [`Hit::doc`] is a position in this list.
    pub fn new(documents: Vec<Document>) -> Index {
        let mut postings: HashMap<String, Vec<Posting>> = HashMap::new();
        let mut lengths = Vec::with_capacity(documents.len());
        for (position, document) in documents.iter().enumerate() {
            let doc = u32::try_from(position).expect("fewer than 2^32 documents");
            let (frequencies, length) = weighted_terms(document);
            lengths.push(length);
            for (term, frequency) in frequencies {
                postings
                    .entry(term)
                    .or_default()
                    .push(Posting { doc, frequency });
            }
        }
        let average = if lengths.is_empty() {
            1.0
        } else {
            (lengths.iter().sum::<f64>() / lengths.len() as f64).max(f64::MIN_POSITIVE)
        };
        let length_norms = lengths
            .iter()
            .map(|length| K1 * (1.0 - B + B * length / average))
            .collect();
        Index {
            slugs: documents
                .into_iter()
                .map(|document| document.slug)
                .collect(),
            postings,
            length_norms,
        }
    }

    /// How many documents are indexed.
    pub fn len(&self) -> usize {
        self.slugs.len()
    }

    /// Whether no document is indexed.
    pub fn is_empty(&self) -> bool {
        self.slugs.is_empty()
    }

    /// Checks `q` and `k` ([`Query::parse`]), then [`Index::search`]es.
    pub fn find(&self, q: &str, k: u32) -> Result<Vec<Hit>, Error> {
        Ok(self.search(&Query::parse(q, k)?))
    }

    /// The best `query.k` documents with a score above 0, best first, equal
    /// scores by slug.
    pub fn search(&self, query: &Query) -> Vec<Hit> {
        let mut hits = self.matches(&query.terms);
        let order = |a: &Hit, b: &Hit| self.rank(a, b);
        if hits.len() > query.k {
            hits.select_nth_unstable_by(query.k - 1, order);
            hits.truncate(query.k);
        }
        hits.sort_unstable_by(order);
        hits
    }

    /// Every document with a score above 0 for `terms` (distinct and
    /// sorted, as [`Query::terms`]), in no particular order.
    pub fn matches(&self, terms: &[String]) -> Vec<Hit> {
        let total = self.len() as f64;
        let mut scores: HashMap<u32, f64> = HashMap::new();
        // Terms are sorted, so a document's score is always added up in the
        // same order (floating-point sums depend on it).
        for term in terms {
            let Some(postings) = self.postings.get(term) else {
                continue;
            };
            let holding = postings.len() as f64;
            let idf = (1.0 + (total - holding + 0.5) / (holding + 0.5)).ln();
            for posting in postings {
                let norm = self.length_norms[posting.doc as usize];
                let saturated = posting.frequency * (K1 + 1.0) / (posting.frequency + norm);
                *scores.entry(posting.doc).or_insert(0.0) += idf * saturated;
            }
        }
        scores
            .into_iter()
            .filter(|(_, score)| *score > 0.0)
            .map(|(doc, score)| Hit {
                doc: doc as usize,
                score,
            })
            .collect()
    }

    /// The slug of document `doc`.
    pub fn slug(&self, doc: usize) -> &str {
        &self.slugs[doc]
    }

    /// Better score first; equal scores by slug.
    fn rank(&self, a: &Hit, b: &Hit) -> Ordering {
        b.score
            .total_cmp(&a.score)
            .then_with(|| self.slugs[a.doc].cmp(&self.slugs[b.doc]))
    }
}

/// A document's weighted term frequencies and weighted length.
fn weighted_terms(document: &Document) -> (HashMap<String, f64>, f64) {
    let weights = FIELD_WEIGHTS;
    let mut frequencies: HashMap<String, f64> = HashMap::new();
    let mut length = 0.0;
    let mut add = |text: &str, weight: f64| {
        for term in tokens::terms(text) {
            *frequencies.entry(term).or_insert(0.0) += weight;
            length += weight;
        }
    };
    add(&document.slug, weights.slug);
    add(&document.name, weights.name);
    add(&document.category, weights.category);
    add(&document.description, weights.description);
    for tag in &document.tags {
        add(tag, weights.tags);
    }
    (frequencies, length)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(slug: &str, name: &str, description: &str, tags: &[&str]) -> Document {
        Document {
            slug: slug.to_string(),
            name: name.to_string(),
            category: String::new(),
            description: description.to_string(),
            tags: tags.iter().map(|tag| tag.to_string()).collect(),
        }
    }

    fn slugs<'a>(index: &'a Index, hits: &[Hit]) -> Vec<&'a str> {
        hits.iter()
            .map(|hit| index.slugs[hit.doc].as_str())
            .collect()
    }

    #[test]
    fn scores_follow_bm25() {
        // Two documents of equal length: "alpha" in one, "beta" in both.
        let index = Index::new(vec![
            document("d1", "", "alpha beta", &[]),
            document("d2", "", "gamma beta", &[]),
        ]);
        let hits = index.find("alpha", 5).unwrap();
        assert_eq!(slugs(&index, &hits), ["d1"]);
        // Each doc has length 3 (slug ×3), +2 description words: 5 both, so
        // the length norm is K1; tf = 1; n = 1 of N = 2.
        let idf = (1.0f64 + (2.0 - 1.0 + 0.5) / (1.0 + 0.5)).ln();
        let expected = idf * (1.0 * (K1 + 1.0)) / (1.0 + K1);
        assert!((hits[0].score - expected).abs() < 1e-12, "{hits:?}");
        // A term in every document still scores above 0 with this IDF.
        let hits = index.find("beta", 5).unwrap();
        assert_eq!(slugs(&index, &hits), ["d1", "d2"]);
        assert!(hits.iter().all(|hit| hit.score > 0.0));
    }

    #[test]
    fn field_weights_rank_a_name_above_a_mention() {
        let index = Index::new(vec![
            document("mentions", "Other", "hashes text with a digest", &[]),
            document("named", "Digest", "does things to text", &[]),
            document("tagged", "Thing", "does things to text", &["digest"]),
        ]);
        let hits = index.find("digest", 5).unwrap();
        assert_eq!(slugs(&index, &hits), ["named", "tagged", "mentions"]);
    }

    #[test]
    fn equal_scores_are_ordered_by_slug_and_repeatable() {
        // Identical documents but for slugs given out of order.
        let docs = ["delta", "alpha", "charlie", "bravo"]
            .iter()
            .map(|slug| document(slug, "Same", "the same words here", &["same"]))
            .collect();
        let index = Index::new(docs);
        let first = index.find("same words", 25).unwrap();
        assert_eq!(
            slugs(&index, &first),
            ["alpha", "bravo", "charlie", "delta"]
        );
        assert!(first.windows(2).all(|pair| pair[0].score == pair[1].score));
        assert_eq!(index.find("same words", 25).unwrap(), first);
        // The cut at k keeps the first by slug too.
        assert_eq!(
            slugs(&index, &index.find("same words", 2).unwrap()),
            ["alpha", "bravo"]
        );
    }

    #[test]
    fn only_documents_holding_a_term_are_answered() {
        let index = Index::new(vec![
            document("a", "", "red", &[]),
            document("b", "", "green", &[]),
        ]);
        assert!(index.find("blue", 5).unwrap().is_empty());
        assert!(index.find("the of and", 5).unwrap().is_empty());
        assert!(Index::new(Vec::new()).find("red", 5).unwrap().is_empty());
    }

    #[test]
    fn at_most_k_results() {
        let docs = (0..40)
            .map(|i| document(&format!("doc{i:02}"), "", "common word", &[]))
            .collect();
        let index = Index::new(docs);
        assert_eq!(index.find("common", 0).unwrap().len(), 5);
        assert_eq!(index.find("common", 25).unwrap().len(), 25);
        assert_eq!(index.find("common", 3).unwrap().len(), 3);
    }
}
