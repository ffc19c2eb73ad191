//! Text: statistics, slugs, case conversion, line diffs, regular
//! expressions and Markdown.
//!
//! Every input is bounded by its schema, and every piece of work by a crate's
//! own limit where it has one: a regex's compiled size and lazy-DFA cache
//! ([`REGEX_SIZE_LIMIT`]), a diff's timeout ([`DIFF_TIMEOUT`]), counts of
//! matches ([`MAX_MATCHES`]), the bytes a tool writes ([`MAX_OUTPUT_BYTES`])
//! and the nesting of a Markdown document ([`MAX_MARKDOWN_DEPTH`]).
//!
//! similar is built with its `std` feature, so the diff's deadline is
//! checked: past [`DIFF_TIMEOUT`] it stops searching for the shortest edit
//! and finishes with a coarser (still correct) diff. Its inputs' size bounds
//! the rest (see `text_diff_of_the_largest_inputs_is_quick`).

use crate::{tool, Tool, ToolError, MAX_TEXT};
use heck::{
    ToKebabCase, ToLowerCamelCase, ToShoutySnakeCase, ToSnakeCase, ToTitleCase, ToTrainCase,
    ToUpperCamelCase,
};
use pulldown_cmark::{Event, Options, Parser};
use regex::{Captures, Regex, RegexBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use similar::{ChangeTag, TextDiff};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

pub static TOOLS: &[Tool] = &[
    tool! {
        slug: "text-stats", name: "Text statistics", category: "text",
        tags: ["words", "characters", "count", "reading-time", "sentences"],
        method: Post, path: "/api/text-stats",
        description: "Counts of a text's characters, bytes, words, lines, sentences and paragraphs, its average word length and its reading time at 200 words a minute.",
        run: text_stats, example: { "text": "The quick brown fox. It jumps over the lazy dog!\n\nA second paragraph." },
        cost: Light,
    },
    tool! {
        slug: "slugify", name: "Slugify", category: "text",
        tags: ["slug", "url", "permalink", "ascii"],
        method: Get, path: "/api/slugify",
        description: "A text as a URL slug: lower-case ASCII letters, digits and single hyphens, with accented and non-Latin letters transliterated.",
        run: slugify, example: { "text": "Hello, Wörld! Ça va?" },
        cost: Light,
    },
    tool! {
        slug: "case-convert", name: "Case convert", category: "text",
        tags: ["case", "camelcase", "snake-case", "kebab-case", "pascalcase", "title-case"],
        method: Post, path: "/api/case-convert",
        description: "A text converted to camel, pascal, snake, kebab, screaming-snake, title, train, lower or upper case (words split at spaces, punctuation and case changes).",
        run: case_convert, example: { "text": "We carry a new world here", "to": "snake" },
        cost: Light,
    },
    tool! {
        slug: "text-diff", name: "Text diff", category: "text",
        tags: ["diff", "unified", "compare", "patch", "lines"],
        method: Post, path: "/api/text-diff",
        description: "A line diff of two texts (each at most 32 KiB) in unified format with 3 lines of context, and the counts of inserted and deleted lines.",
        run: text_diff, example: { "before": "one\ntwo\nthree\n", "after": "one\n2\nthree\nfour\n" },
    },
    tool! {
        slug: "regex-test", name: "Regex test", category: "text",
        tags: ["regex", "regexp", "match", "capture", "pattern"],
        method: Post, path: "/api/regex-test",
        description: "Matches a regular expression (Rust regex syntax, linear time, flags i/m/s/x/U) against a text: whether it matches, and up to 1,000 matches with their byte offsets and numbered and named groups.",
        run: regex_test, example: { "pattern": "(?P<year>\\d{4})-(?P<month>\\d{2})", "text": "from 2024-01 to 2025-06", "flags": "" },
    },
    tool! {
        slug: "regex-replace", name: "Regex replace", category: "text",
        tags: ["regex", "regexp", "replace", "substitute", "pattern"],
        method: Post, path: "/api/regex-replace",
        description: "Replaces the matches of a regular expression (Rust regex syntax, flags i/m/s/x/U) in a text, all or only the first; `$1` and `${name}` in the replacement insert groups. Answers the result and the number of replacements.",
        run: regex_replace, example: { "pattern": "(?P<y>\\d{4})-(?P<m>\\d{2})", "text": "from 2024-01 to 2025-06", "replacement": "${m}/${y}" },
    },
    tool! {
        slug: "markdown-to-html", name: "Markdown to HTML", category: "text",
        tags: ["markdown", "commonmark", "html", "render", "sanitize"],
        method: Post, path: "/api/markdown-to-html",
        description: "Renders CommonMark (with tables and strikethrough) to HTML, sanitized: scripts, event handlers and `javascript:` links are removed.",
        run: markdown_to_html, example: { "markdown": "# Title\n\nSome *emphasis* and a [link](https://example.com).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n" },
    },
];

/// The most bytes of text a tool here writes.
const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// The most matches `regex-test` lists.
const MAX_MATCHES: usize = 1000;

/// The most groups `regex-test` lists over all its matches.
const MAX_GROUPS: usize = 20_000;

/// A regex's compiled program and its lazy DFA's cache are each held to this.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How long a diff may search for the shortest edit before it approximates
/// (similar's deadline, which its `std` feature makes effective).
const DIFF_TIMEOUT: Duration = Duration::from_millis(500);

/// The deepest a Markdown document's blocks and inlines may nest.
const MAX_MARKDOWN_DEPTH: usize = 100;

/// Words read a minute, for `text-stats`' reading time.
const WORDS_PER_MINUTE: f64 = 200.0;

/// The longest regular expression the regex tools take.
const MAX_PATTERN: u32 = 1024;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TextInput {
    /// The text.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TextStats {
    /// Unicode scalar values.
    pub characters: usize,
    /// UTF-8 bytes.
    pub bytes: usize,
    /// Whitespace-separated runs with at least one letter or digit.
    pub words: usize,
    pub lines: usize,
    /// Runs of text with a word, ended by `.`, `!` or `?` (or the end).
    pub sentences: usize,
    /// Runs of non-blank lines.
    pub paragraphs: usize,
    /// Letters and digits per word, rounded to 2 decimals.
    pub average_word_length: f64,
    /// At 200 words a minute, rounded up.
    pub reading_time_seconds: u64,
}

/// The end of a sentence: `.`, `!` or `?` (any run of them), then
/// whitespace or the end.
static SENTENCE_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[.!?]+(?:\s+|\z)").expect("a valid constant pattern"));

fn text_stats(input: TextInput) -> Result<TextStats, ToolError> {
    let text = input.text.as_str();
    let has_word = |s: &str| s.chars().any(char::is_alphanumeric);
    let words: Vec<&str> = text.split_whitespace().filter(|w| has_word(w)).collect();
    let word_chars: usize = words
        .iter()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).count())
        .sum();
    let average_word_length = if words.is_empty() {
        0.0
    } else {
        (word_chars as f64 / words.len() as f64 * 100.0).round() / 100.0
    };
    let mut paragraphs = 0;
    let mut in_paragraph = false;
    for line in text.lines() {
        let blank = line.trim().is_empty();
        if !blank && !in_paragraph {
            paragraphs += 1;
        }
        in_paragraph = !blank;
    }
    Ok(TextStats {
        characters: text.chars().count(),
        bytes: text.len(),
        words: words.len(),
        lines: text.lines().count(),
        sentences: SENTENCE_END.split(text).filter(|s| has_word(s)).count(),
        paragraphs,
        average_word_length,
        reading_time_seconds: (words.len() as f64 * 60.0 / WORDS_PER_MINUTE).ceil() as u64,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SlugInput {
    /// The text to slugify.
    #[schemars(length(max = 2048))]
    pub text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlugOutput {
    pub slug: String,
}

fn slugify(input: SlugInput) -> Result<SlugOutput, ToolError> {
    Ok(SlugOutput {
        slug: slug::slugify(&input.text),
    })
}

/// A letter case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    /// `camelCase`
    Camel,
    /// `PascalCase`
    Pascal,
    /// `snake_case`
    Snake,
    /// `kebab-case`
    Kebab,
    /// `SCREAMING_SNAKE_CASE`
    ScreamingSnake,
    /// `Title Case`
    Title,
    /// `Train-Case`
    Train,
    /// `lower case`
    Lower,
    /// `UPPER CASE`
    Upper,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CaseInput {
    /// The text to convert.
    #[schemars(length(max = 4096))]
    pub text: String,
    /// The case to convert to.
    pub to: Case,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseOutput {
    pub to: Case,
    pub result: String,
}

fn case_convert(input: CaseInput) -> Result<CaseOutput, ToolError> {
    let text = input.text.as_str();
    let result = match input.to {
        Case::Camel => text.to_lower_camel_case(),
        Case::Pascal => text.to_upper_camel_case(),
        Case::Snake => text.to_snake_case(),
        Case::Kebab => text.to_kebab_case(),
        Case::ScreamingSnake => text.to_shouty_snake_case(),
        Case::Title => text.to_title_case(),
        Case::Train => text.to_train_case(),
        Case::Lower => text.to_lowercase(),
        Case::Upper => text.to_uppercase(),
    };
    Ok(CaseOutput {
        to: input.to,
        result,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiffInput {
    /// The old text.
    #[schemars(length(max = MAX_TEXT))]
    pub before: String,
    /// The new text.
    #[schemars(length(max = MAX_TEXT))]
    pub after: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffOutput {
    /// Whether the texts are the same.
    pub identical: bool,
    /// The unified diff, its files named `before` and `after`; empty when
    /// the texts are the same.
    pub unified: String,
    /// Lines only in `after`.
    pub insertions: usize,
    /// Lines only in `before`.
    pub deletions: usize,
}

fn text_diff(input: DiffInput) -> Result<DiffOutput, ToolError> {
    let diff = TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(input.before.as_str(), input.after.as_str());
    let (mut insertions, mut deletions) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => insertions += 1,
            ChangeTag::Delete => deletions += 1,
            ChangeTag::Equal => {}
        }
    }
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header("before", "after")
        .to_string();
    Ok(DiffOutput {
        identical: insertions == 0 && deletions == 0,
        unified,
        insertions,
        deletions,
    })
}

/// A regex from the `pattern` field, with `flags`, under the size limits.
fn build_regex(pattern: &str, flags: &str) -> Result<Regex, ToolError> {
    let mut builder = RegexBuilder::new(pattern);
    builder
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT);
    for flag in flags.chars() {
        match flag {
            'i' => builder.case_insensitive(true),
            'm' => builder.multi_line(true),
            's' => builder.dot_matches_new_line(true),
            'x' => builder.ignore_whitespace(true),
            'U' => builder.swap_greed(true),
            other => {
                return Err(ToolError::field(
                    "flags",
                    format!("unknown flag `{other}`: the flags are i, m, s, x and U"),
                ))
            }
        };
    }
    builder
        .build()
        .map_err(|error| ToolError::field("pattern", error))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegexTestInput {
    /// The regular expression, in Rust regex syntax (no look-around or
    /// backreferences; matching takes linear time).
    #[schemars(length(max = MAX_PATTERN))]
    pub pattern: String,
    /// The text to search.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// Flags, any of: `i` case-insensitive, `m` multi-line (`^`/`$` at line
    /// ends), `s` `.` matches newlines, `x` ignore whitespace and `#`
    /// comments, `U` swap greedy and lazy.
    #[serde(default)]
    #[schemars(length(max = 8))]
    pub flags: String,
}

/// Where a match or group is, in byte offsets into the text.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegexMatch {
    pub start: usize,
    pub end: usize,
    pub text: String,
    /// Groups 1, 2, …; `null` for a group that did not take part.
    pub groups: Vec<Option<Span>>,
    /// The named groups, by name.
    pub named: BTreeMap<String, Option<Span>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegexTestOutput {
    /// Whether the pattern matches anywhere in the text.
    pub matches: bool,
    /// How many matches are listed.
    pub count: usize,
    /// Whether listing stopped early: at 1,000 matches, 20,000 groups or
    /// 256 KiB of matched text.
    pub truncated: bool,
    /// The matches, left to right, none overlapping.
    pub results: Vec<RegexMatch>,
}

fn span(captures: &Captures<'_>, index: usize) -> Option<Span> {
    captures.get(index).map(|m| Span {
        start: m.start(),
        end: m.end(),
        text: m.as_str().to_string(),
    })
}

fn regex_test(input: RegexTestInput) -> Result<RegexTestOutput, ToolError> {
    let regex = build_regex(&input.pattern, &input.flags)?;
    let names: Vec<(usize, &str)> = regex
        .capture_names()
        .enumerate()
        .filter_map(|(index, name)| name.map(|name| (index, name)))
        .collect();
    let mut results = Vec::new();
    let (mut groups, mut bytes) = (0usize, 0usize);
    let mut truncated = false;
    for captures in regex.captures_iter(&input.text) {
        let whole = captures.get(0).map_or(0, |m| m.len());
        let captured: usize = (1..captures.len())
            .filter_map(|index| captures.get(index))
            .map(|m| m.len())
            .sum();
        groups += captures.len() + names.len();
        bytes += whole + captured;
        if results.len() == MAX_MATCHES || groups > MAX_GROUPS || bytes > MAX_OUTPUT_BYTES {
            truncated = true;
            break;
        }
        let Some(matched) = span(&captures, 0) else {
            continue;
        };
        results.push(RegexMatch {
            start: matched.start,
            end: matched.end,
            text: matched.text,
            groups: (1..captures.len())
                .map(|index| span(&captures, index))
                .collect(),
            named: names
                .iter()
                .map(|&(index, name)| (name.to_string(), span(&captures, index)))
                .collect(),
        });
    }
    Ok(RegexTestOutput {
        matches: !results.is_empty() || regex.is_match(&input.text),
        count: results.len(),
        truncated,
        results,
    })
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegexReplaceInput {
    /// The regular expression, in Rust regex syntax.
    #[schemars(length(max = MAX_PATTERN))]
    pub pattern: String,
    /// The text to search.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// What each match becomes: `$1` or `${1}` inserts group 1, `${name}`
    /// a named group, `$$` a literal `$`.
    #[schemars(length(max = 4096))]
    pub replacement: String,
    /// Replace every match (default), or only the first.
    #[serde(default = "default_true")]
    pub all: bool,
    /// Flags, any of `i`, `m`, `s`, `x`, `U` (as in `regex-test`).
    #[serde(default)]
    #[schemars(length(max = 8))]
    pub flags: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegexReplaceOutput {
    pub result: String,
    /// How many matches were replaced.
    pub count: usize,
}

fn regex_replace(input: RegexReplaceInput) -> Result<RegexReplaceOutput, ToolError> {
    let regex = build_regex(&input.pattern, &input.flags)?;
    let text = input.text.as_str();
    let limit = if input.all { usize::MAX } else { 1 };
    let mut result = String::new();
    let mut count = 0;
    let mut last = 0;
    // What `Regex::replacen` does, with the result's length checked as it grows.
    for captures in regex.captures_iter(text).take(limit) {
        let Some(matched) = captures.get(0) else {
            continue;
        };
        result.push_str(&text[last..matched.start()]);
        captures.expand(&input.replacement, &mut result);
        last = matched.end();
        count += 1;
        if result.len() > MAX_OUTPUT_BYTES {
            return Err(ToolError::field(
                "replacement",
                format!(
                    "the result would be longer than {} KiB",
                    MAX_OUTPUT_BYTES / 1024
                ),
            ));
        }
    }
    result.push_str(&text[last..]);
    if result.len() > MAX_OUTPUT_BYTES {
        return Err(ToolError::field(
            "replacement",
            format!(
                "the result would be longer than {} KiB",
                MAX_OUTPUT_BYTES / 1024
            ),
        ));
    }
    Ok(RegexReplaceOutput { result, count })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MarkdownInput {
    /// The Markdown (CommonMark, with GitHub-style tables and
    /// `~~strikethrough~~`). Raw HTML in it is kept only where safe.
    #[schemars(length(max = MAX_TEXT))]
    pub markdown: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkdownOutput {
    /// The sanitized HTML.
    pub html: String,
}

fn markdown_to_html(input: MarkdownInput) -> Result<MarkdownOutput, ToolError> {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events: Vec<Event<'_>> = Parser::new_ext(&input.markdown, options).collect();
    // The sanitizer's HTML parser slows down on deep nesting; no real
    // document nests this deep.
    let mut depth = 0usize;
    for event in &events {
        match event {
            Event::Start(_) => {
                depth += 1;
                if depth > MAX_MARKDOWN_DEPTH {
                    return Err(ToolError::field(
                        "markdown",
                        format!("nested more than {MAX_MARKDOWN_DEPTH} levels deep"),
                    ));
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    let html = ammonia::clean(&html);
    if html.len() > MAX_OUTPUT_BYTES * 4 {
        return Err(ToolError::field(
            "markdown",
            "the HTML would be longer than 1 MiB",
        ));
    }
    Ok(MarkdownOutput { html })
}

#[cfg(test)]
mod tests {
    use crate::testing::{field_of_error as refused, run};
    use serde_json::{json, Value};

    #[test]
    fn text_stats_counts() {
        let stats = run(
            "text-stats",
            json!({ "text": "The quick brown fox. It jumps over the lazy dog!\n\nA second paragraph?! Yes" }),
        );
        assert_eq!(stats["words"], 14);
        assert_eq!(stats["lines"], 3);
        assert_eq!(stats["paragraphs"], 2);
        assert_eq!(stats["sentences"], 4);
        assert_eq!(stats["characters"], 74);
        assert_eq!(stats["bytes"], 74);
        // 14 words at 200 a minute: 4.2 s, rounded up.
        assert_eq!(stats["readingTimeSeconds"], 5);
        let unicode = run("text-stats", json!({ "text": "héllo wörld" }));
        assert_eq!(unicode["characters"], 11);
        assert_eq!(unicode["bytes"], 13);
        assert_eq!(unicode["averageWordLength"], 5.0);
        let empty = run("text-stats", json!({ "text": "" }));
        assert_eq!(empty["words"], 0);
        assert_eq!(empty["sentences"], 0);
        assert_eq!(empty["averageWordLength"], 0.0);
        let long = "a".repeat(crate::MAX_TEXT as usize + 1);
        assert_eq!(
            refused("text-stats", json!({ "text": long })).as_deref(),
            Some("text")
        );
    }

    #[test]
    fn slugify_matches_the_slug_crates_examples() {
        // The examples in the slug crate's documentation (slug 0.1).
        for (text, slug) in [
            ("My Test String!!!1!1", "my-test-string-1-1"),
            ("test\nit   now!", "test-it-now"),
            ("  --test_-_cool", "test-cool"),
            ("Æúű--cool?", "aeuu-cool"),
            ("You & Me", "you-me"),
            ("user@example.com", "user-example-com"),
        ] {
            assert_eq!(run("slugify", json!({ "text": text }))["slug"], slug);
        }
        assert_eq!(
            refused("slugify", json!({ "text": 5 })).as_deref(),
            Some("text")
        );
    }

    #[test]
    fn case_convert_matches_hecks_examples() {
        // The examples in heck 0.5's documentation.
        for (text, to, result) in [
            (
                "It is we who built these palaces and cities.",
                "camel",
                "itIsWeWhoBuiltThesePalacesAndCities",
            ),
            (
                "We are not in the least afraid of ruins.",
                "pascal",
                "WeAreNotInTheLeastAfraidOfRuins",
            ),
            (
                "We carry a new world here, in our hearts.",
                "snake",
                "we_carry_a_new_world_here_in_our_hearts",
            ),
            (
                "We are going to inherit the earth.",
                "kebab",
                "we-are-going-to-inherit-the-earth",
            ),
            (
                "That world is growing in this minute.",
                "screaming-snake",
                "THAT_WORLD_IS_GROWING_IN_THIS_MINUTE",
            ),
            (
                "We have always lived in slums and holes in the wall.",
                "title",
                "We Have Always Lived In Slums And Holes In The Wall",
            ),
            (
                "We are going to inherit the earth.",
                "train",
                "We-Are-Going-To-Inherit-The-Earth",
            ),
            ("Straße", "upper", "STRASSE"),
            ("ÀB", "lower", "àb"),
        ] {
            let output = run("case-convert", json!({ "text": text, "to": to }));
            assert_eq!(output["result"], result, "{to}");
        }
        assert_eq!(
            refused("case-convert", json!({ "text": "x", "to": "sponge" })).as_deref(),
            Some("to")
        );
    }

    #[test]
    fn text_diff_is_unified() {
        let output = run(
            "text-diff",
            json!({ "before": "one\ntwo\nthree\n", "after": "one\n2\nthree\nfour\n" }),
        );
        assert_eq!(output["insertions"], 2);
        assert_eq!(output["deletions"], 1);
        assert_eq!(output["identical"], false);
        assert_eq!(
            output["unified"],
            "--- before\n+++ after\n@@ -1,3 +1,4 @@\n one\n-two\n+2\n three\n+four\n"
        );
        let same = run("text-diff", json!({ "before": "a\n", "after": "a\n" }));
        assert_eq!(same["identical"], true);
        assert_eq!(same["unified"], "");
        let long = "x\n".repeat(crate::MAX_TEXT as usize);
        assert_eq!(
            refused("text-diff", json!({ "before": "", "after": long })).as_deref(),
            Some("after")
        );
    }

    #[test]
    fn text_diff_of_the_largest_inputs_is_quick() {
        let before = "a\nb\n".repeat(crate::MAX_TEXT as usize / 4);
        let after = "a\nc\nc\n".repeat(crate::MAX_TEXT as usize / 6);
        let started = std::time::Instant::now();
        let output = run("text-diff", json!({ "before": before, "after": after }));
        assert!(output["insertions"].as_u64().unwrap() > 0);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn regex_test_lists_matches_and_groups() {
        let output = run(
            "regex-test",
            json!({ "pattern": r"(?P<year>\d{4})-(?P<month>\d{2})(x)?", "text": "from 2024-01 to 2025-06" }),
        );
        assert_eq!(output["matches"], true);
        assert_eq!(output["count"], 2);
        assert_eq!(output["truncated"], false);
        let first = &output["results"][0];
        assert_eq!(first["start"], 5);
        assert_eq!(first["end"], 12);
        assert_eq!(first["text"], "2024-01");
        assert_eq!(
            first["groups"],
            json!([
                { "start": 5, "end": 9, "text": "2024" },
                { "start": 10, "end": 12, "text": "01" },
                null
            ])
        );
        assert_eq!(first["named"]["month"]["text"], "01");
        assert_eq!(output["results"][1]["named"]["year"]["text"], "2025");

        let flags = run(
            "regex-test",
            json!({ "pattern": "^b.c$", "text": "a\nB\nC", "flags": "ims" }),
        );
        assert_eq!(flags["results"][0]["text"], "B\nC");
        let none = run("regex-test", json!({ "pattern": "z", "text": "abc" }));
        assert_eq!(none["matches"], false);
        assert_eq!(none["count"], 0);

        // Empty matches at every position stop at the cap.
        let many = run(
            "regex-test",
            json!({ "pattern": "", "text": "a".repeat(5000) }),
        );
        assert_eq!(many["count"], 1000);
        assert_eq!(many["truncated"], true);
    }

    #[test]
    fn regex_tools_refuse_bad_patterns_and_flags() {
        for slug in ["regex-test", "regex-replace"] {
            let input = |pattern: &str, flags: &str| {
                let mut input = json!({ "pattern": pattern, "text": "abc", "flags": flags });
                if slug == "regex-replace" {
                    input["replacement"] = json!("");
                }
                input
            };
            let error = |input| refused(slug, input);
            assert_eq!(error(input("(", "")).as_deref(), Some("pattern"));
            assert_eq!(error(input("a", "g")).as_deref(), Some("flags"));
            // Compiles to more than the size limit.
            assert_eq!(error(input(r"\w{1000}", "")).as_deref(), Some("pattern"));
            // Look-around is not supported.
            assert_eq!(error(input("a(?=b)", "")).as_deref(), Some("pattern"));
            let long = "a".repeat(1025);
            assert_eq!(error(input(&long, "")).as_deref(), Some("pattern"));
        }
    }

    #[test]
    fn regex_replace_expands_groups() {
        let output = run(
            "regex-replace",
            json!({ "pattern": r"(?P<y>\d{4})-(?P<m>\d{2})", "text": "from 2024-01 to 2025-06", "replacement": "${m}/${y}" }),
        );
        assert_eq!(
            output,
            json!({ "result": "from 01/2024 to 06/2025", "count": 2 })
        );
        let first = run(
            "regex-replace",
            json!({ "pattern": "o", "text": "foo boo", "replacement": "0", "all": false }),
        );
        assert_eq!(first, json!({ "result": "f0o boo", "count": 1 }));
        let numbered = run(
            "regex-replace",
            json!({ "pattern": r"(\w+) (\w+)", "text": "hello world", "replacement": "$2 $1 $$", "flags": "i" }),
        );
        assert_eq!(numbered["result"], "world hello $");
        let empty = run(
            "regex-replace",
            json!({ "pattern": "", "text": "ab", "replacement": "-" }),
        );
        assert_eq!(empty, json!({ "result": "-a-b-", "count": 3 }));
        // A replacement that would blow the text up is refused.
        let huge = run_err_field(json!({
            "pattern": "a", "text": "a".repeat(30_000), "replacement": "$0".repeat(2000),
        }));
        assert_eq!(huge.as_deref(), Some("replacement"));
    }

    fn run_err_field(input: Value) -> Option<String> {
        refused("regex-replace", input)
    }

    fn html(markdown: &str) -> String {
        run("markdown-to-html", json!({ "markdown": markdown }))["html"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn markdown_follows_commonmark() {
        // CommonMark spec 0.31.2, examples 62, 42, 350, 301 and 119.
        assert_eq!(
            html("# foo\n## foo\n### foo\n"),
            "<h1>foo</h1>\n<h2>foo</h2>\n<h3>foo</h3>\n"
        );
        assert_eq!(html("***\n---\n___\n"), "<hr>\n<hr>\n<hr>\n");
        assert_eq!(html("*foo bar*\n"), "<p><em>foo bar</em></p>\n");
        assert_eq!(
            html("- foo\n- bar\n+ baz\n"),
            "<ul>\n<li>foo</li>\n<li>bar</li>\n</ul>\n<ul>\n<li>baz</li>\n</ul>\n"
        );
        assert_eq!(
            html("```\n<\n >\n```\n"),
            "<pre><code>&lt;\n &gt;\n</code></pre>\n"
        );
        // GitHub Flavored Markdown spec, example 491 (strikethrough).
        assert_eq!(
            html("~~Hi~~ Hello, world!\n"),
            "<p><del>Hi</del> Hello, world!</p>\n"
        );
        let table = html("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(
            table.contains("<table>") && table.contains("<td>2</td>"),
            "{table}"
        );
    }

    #[test]
    fn markdown_is_sanitized() {
        let out = html("<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1)) [ok](https://example.com)\n");
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("onerror"), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
        assert!(out.contains("href=\"https://example.com\""), "{out}");
        assert!(out.contains("<img src=\"x\">"), "{out}");
    }

    #[test]
    fn markdown_refuses_deep_nesting() {
        assert_eq!(
            refused(
                "markdown-to-html",
                json!({ "markdown": ">".repeat(20_000) })
            )
            .as_deref(),
            Some("markdown")
        );
        assert_eq!(
            refused("markdown-to-html", json!({ "markdown": 1 })).as_deref(),
            Some("markdown")
        );
        // Nesting within the limit is fine.
        assert!(html(&">".repeat(50)).starts_with("<blockquote>"));
    }
}
