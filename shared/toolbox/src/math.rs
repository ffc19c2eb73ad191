//! Math: a safe arithmetic expression evaluator (exmex) and descriptive
//! statistics (statrs).
//!
//! `math-eval` parses the expression with exmex into a flat list of numbers
//! and operators over `f64`, with exmex's default operators and constants
//! plus the lower-case constants `pi` and `tau`. An expression has no
//! variables (a name that is not an operator or constant is refused), no
//! loops and no recursion: exmex's parser and evaluator are iterative, and
//! their work grows at most quadratically with the expression's length,
//! which is at most 1 KiB. Before exmex sees it, the expression is limited
//! to the characters its grammar uses (so `{…}` variable names and other
//! symbols never reach it), and a result that is not a finite number is
//! refused.

use crate::{tool, Tool, ToolError};
use exmex::{Express, FlatEx, FloatOpsFactory, MakeOperators, Operator};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use statrs::statistics::{Data, OrderStatistics, Statistics};

pub static TOOLS: &[Tool] = &[
    tool! {
        slug: "math-eval", name: "Math evaluate", category: "math",
        tags: ["calculator", "expression", "arithmetic", "evaluate", "formula"],
        method: Post, path: "/api/math-eval",
        description: "Evaluates an arithmetic expression safely, in 64-bit floating point: numbers (2, 2.5, .5; no exponent notation, write 2 * 10^3), + - * / ^ and parentheses. Unary operators and functions bind tighter than binary ones and ^ groups left to right, so -2^2 is 4 and 2^3^2 is 64 (write -(2^2) or 2^(3^2)). Functions, as f(x): sqrt, cbrt, exp, ln, log (natural, like ln), log2, log10, sin, cos, tan, asin, acos, atan, sinh, cosh, tanh, asinh, acosh, atanh (radians), abs, signum, floor, ceil, round, trunc, fract; with two arguments: min(a, b), max(a, b), atan2(y, x), also written infix (a min b); the second argument cannot itself contain a comma (write max(min(3, 4), 1) or max(1, (3 min 4)), not max(1, min(3, 4))). Constants: pi (or PI, π), tau (TAU, τ), e (E). No variables. A result that is not a finite number (1/0, sqrt(-1)) is refused.",
        run: math_eval, example: { "expression": "2 + 3 * sqrt(16) ^ 2" },
    },
    tool! {
        slug: "statistics", name: "Statistics", category: "math",
        tags: ["mean", "median", "mode", "variance", "standard-deviation", "percentile"],
        method: Post, path: "/api/statistics",
        description: "Descriptive statistics of up to 100,000 numbers: count, sum, min, max, mean, median, modes, sample and population variance and standard deviation, and the 25th, 50th, 75th, 90th, 95th and 99th percentiles (Hyndman-Fan type 8, median-unbiased).",
        run: statistics, example: { "values": [2, 4, 4, 4, 5, 5, 7, 9] },
    },
];

/// The longest expression `math-eval` takes.
const MAX_EXPRESSION: u32 = 1024;

/// The most numbers `statistics` takes.
const MAX_VALUES: u32 = 100_000;

/// The most modes `statistics` lists.
const MAX_MODES: usize = 100;

/// exmex's default operators and constants for floats ([`FloatOpsFactory`]:
/// `PI`, `π`, `TAU`, `τ`, `E` and `e` among them), plus `pi` and `tau`.
#[derive(Clone, Debug)]
struct MathOperators;

impl MakeOperators<f64> for MathOperators {
    fn make<'a>() -> Vec<Operator<'a, f64>> {
        let mut operators = FloatOpsFactory::<f64>::make();
        operators.push(Operator::make_constant("pi", std::f64::consts::PI));
        operators.push(Operator::make_constant("tau", std::f64::consts::TAU));
        operators
    }
}

/// Whether `c` may appear in an expression: what exmex's grammar uses for
/// numbers, names, operators and function calls, and the constants `π` and
/// `τ`. Whitespace is mapped to spaces before this check.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || " _.+-*/^(),πτ".contains(c)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MathEvalInput {
    /// The expression, e.g. `2 + 3 * 4` or `sqrt(2) * sin(pi / 4)`.
    #[schemars(length(max = MAX_EXPRESSION))]
    pub expression: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MathEvalOutput {
    /// The expression's value.
    pub result: f64,
}

fn math_eval(input: MathEvalInput) -> Result<MathEvalOutput, ToolError> {
    let refuse = |message: String| ToolError::field("expression", message);
    // exmex skips only spaces; other whitespace separates tokens just as well.
    let text: String = input
        .expression
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    if let Some(c) = text.chars().find(|&c| !allowed(c)) {
        return Err(refuse(format!("`{c}` is not part of an expression")));
    }
    // Checked here because exmex accepts one `)` too many after a nested
    // two-argument call (see below).
    let mut depth: usize = 0;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| refuse("a `)` closes no `(`".to_string()))?;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err(refuse(format!("{depth} `(` not closed")));
    }
    let expression = FlatEx::<f64, MathOperators>::parse(&text).map_err(|error| {
        // exmex reads `f(a, b)` as `((a) f (b))` and loses count of the
        // parentheses when `b` holds a comma: with the user's parentheses
        // balanced (checked above), that is where its mismatch comes from.
        if error.msg() == "parentheses mismatch" {
            refuse(format!(
                "a two-argument function's second argument cannot contain a comma: \
                 put the nested call first (max(min(3, 4), 1)) or write it infix \
                 (max(1, (3 min 4))); exmex says: {}",
                error.msg()
            ))
        } else {
            refuse(format!("not a valid expression: {}", error.msg()))
        }
    })?;
    if let Some(name) = expression.var_names().first() {
        return Err(refuse(format!(
            "unknown name `{name}`: there are no variables (nor exponent notation), only the functions and constants listed"
        )));
    }
    let result = expression
        .eval(&[])
        .map_err(|error| refuse(error.msg().to_string()))?;
    if !result.is_finite() {
        return Err(refuse(format!(
            "the result, {result}, is not a finite number"
        )));
    }
    Ok(MathEvalOutput { result })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatisticsInput {
    /// The numbers (at least 1).
    #[schemars(length(min = 1, max = MAX_VALUES))]
    pub values: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatisticsOutput {
    pub count: usize,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
    /// The most frequent values, ascending (at most 100); empty when no
    /// value occurs more than once.
    pub modes: Vec<f64>,
    /// How often each mode occurs.
    pub mode_frequency: usize,
    /// With Bessel's correction (n − 1); `null` for a single value.
    pub sample_variance: Option<f64>,
    pub sample_std_dev: Option<f64>,
    pub population_variance: f64,
    pub population_std_dev: f64,
    pub percentiles: Percentiles,
}

fn statistics(input: StatisticsInput) -> Result<StatisticsOutput, ToolError> {
    let values = input.values;
    if let Some(index) = values.iter().position(|value| !value.is_finite()) {
        return Err(ToolError::field(
            format!("values/{index}"),
            "not a finite number",
        ));
    }
    if values.is_empty() {
        return Err(ToolError::field("values", "at least one number is needed"));
    }
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);

    // Modes: the longest runs of equal values in the sorted list.
    let mut runs: Vec<(f64, usize)> = Vec::new();
    for &value in &sorted {
        match runs.last_mut() {
            Some((last, count)) if *last == value => *count += 1,
            _ => runs.push((value, 1)),
        }
    }
    let mode_frequency = runs.iter().map(|&(_, count)| count).max().unwrap_or(0);
    let modes = if mode_frequency > 1 {
        runs.iter()
            .filter(|&&(_, count)| count == mode_frequency)
            .map(|&(value, _)| value)
            .take(MAX_MODES)
            .collect()
    } else {
        Vec::new()
    };

    let sample = values.len() > 1;
    let mut data = Data::new(sorted);
    let output = StatisticsOutput {
        count: values.len(),
        sum: values.iter().sum(),
        min: Statistics::min(&values),
        max: Statistics::max(&values),
        mean: Statistics::mean(&values),
        median: data.median(),
        modes,
        mode_frequency,
        sample_variance: sample.then(|| Statistics::variance(&values)),
        sample_std_dev: sample.then(|| Statistics::std_dev(&values)),
        population_variance: Statistics::population_variance(&values),
        population_std_dev: Statistics::population_std_dev(&values),
        percentiles: Percentiles {
            p25: data.percentile(25),
            p50: data.percentile(50),
            p75: data.percentile(75),
            p90: data.percentile(90),
            p95: data.percentile(95),
            p99: data.percentile(99),
        },
    };
    let overflowed = [
        ("sum", Some(output.sum)),
        ("mean", Some(output.mean)),
        ("sampleVariance", output.sample_variance),
        ("populationVariance", Some(output.population_variance)),
        (
            "percentiles",
            Some(output.percentiles.p99 - output.percentiles.p25),
        ),
    ]
    .into_iter()
    .find(|(_, value)| value.is_some_and(|value| !value.is_finite()));
    if let Some((name, _)) = overflowed {
        return Err(ToolError::field(
            "values",
            format!("the numbers are too large: their {name} overflows"),
        ));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use crate::find;
    use serde_json::{json, Value};

    fn eval(expression: &str) -> Value {
        find("math-eval")
            .unwrap()
            .run(json!({ "expression": expression }))
            .unwrap()
    }

    fn eval_refused(expression: &str) -> Option<String> {
        find("math-eval")
            .unwrap()
            .run(json!({ "expression": expression }))
            .unwrap_err()
            .field
    }

    fn close(value: &Value, expected: f64) -> bool {
        value
            .as_f64()
            .is_some_and(|value| (value - expected).abs() <= 1e-9 * expected.abs().max(1.0))
    }

    #[test]
    fn math_eval_gives_known_values() {
        // Arithmetic and identities anyone can check: precedence (14, not
        // 20), sqrt(16) = 4, 2^10 = 1024, sin(π/2) = 1, cos(π) = −1,
        // ln(e) = 1, log10(1000) = 3, atan2(1, 1) = π/4 and hypotenuse 5.
        assert_eq!(eval("2 + 3 * 4"), json!({ "result": 14.0 }));
        assert_eq!(eval("(2 + 3) * 4")["result"], 20.0);
        assert_eq!(eval("sqrt(16)")["result"], 4.0);
        assert_eq!(eval("2^10")["result"], 1024.0);
        assert_eq!(eval("2 ^ -1")["result"], 0.5);
        assert_eq!(eval("7 / 2")["result"], 3.5);
        assert_eq!(eval("8 / 2 * 4")["result"], 16.0);
        assert_eq!(eval("1 - 2 - 3")["result"], -4.0);
        assert_eq!(eval("10 - 2 + 3")["result"], 11.0);
        assert_eq!(eval("-3 + 1")["result"], -2.0);
        assert_eq!(eval("2 * -3")["result"], -6.0);
        assert_eq!(eval(".5 + 5.")["result"], 5.5);
        assert_eq!(eval("min(3, 1) + max(2, 1.5)")["result"], 3.0);
        assert_eq!(eval("max(min(3, 4), 1)")["result"], 3.0);
        assert_eq!(eval("max(1, (3 min 4))")["result"], 3.0);
        assert_eq!(eval("max(sqrt(4), (1 + 2) * 2)")["result"], 6.0);
        assert_eq!(eval("floor(2.7) + ceil(2.1) + round(2.5)")["result"], 8.0);
        assert_eq!(eval("abs(-5) + signum(-2) + trunc(-2.5)")["result"], 2.0);
        assert_eq!(eval("sqrt(3^2 + 4^2)")["result"], 5.0);
        assert_eq!(eval("cbrt(27)")["result"], 3.0);
        assert_eq!(eval("log2(8)")["result"], 3.0);
        assert!(close(&eval("sin(pi / 2)")["result"], 1.0));
        assert!(close(&eval("sin(PI / 2)")["result"], 1.0));
        assert!(close(&eval("cos(π)")["result"], -1.0));
        assert!(close(&eval("tan(PI / 4)")["result"], 1.0));
        assert!(close(&eval("tau / 2")["result"], std::f64::consts::PI));
        assert!(close(&eval("ln(e)")["result"], 1.0));
        assert!(close(&eval("log(E^2)")["result"], 2.0));
        assert!(close(&eval("log10(1000)")["result"], 3.0));
        assert!(close(&eval("exp(1)")["result"], std::f64::consts::E));
        assert!(close(
            &eval("atan2(1, 1) * 4")["result"],
            std::f64::consts::PI
        ));
        assert!(close(&eval("sqrt(2) * sin(pi / 4)")["result"], 1.0));
        assert_eq!(eval("2 + 3 * sqrt(16) ^ 2")["result"], 50.0);
        // Whitespace of any kind separates tokens.
        assert_eq!(eval("1 +\n\t2")["result"], 3.0);
        // exmex's documented quirks, as the description says: unary
        // operators bind tightest, and ^ groups left to right.
        assert_eq!(eval("-2^2")["result"], 4.0);
        assert_eq!(eval("-(2^2)")["result"], -4.0);
        assert_eq!(eval("2^3^2")["result"], 64.0);
        assert_eq!(eval("2^(3^2)")["result"], 512.0);
    }

    #[test]
    fn math_eval_refuses_invalid_expressions() {
        for expression in [
            "",
            "   ",
            "1 +",
            "(1",
            "1)",
            "()",
            "1 2",
            "1..2",
            "1.2.3",
            "x",
            "2 * x + 1",
            "pi2",
            "{x}",
            "{x + 1",
            "sin",
            "sin()",
            "unknown(1)",
            "min(1, 2, 3)",
            "max(1, max(2, 3))",
            "min(5, min(3, 1)))",
            "min(5, min(3, 1)) + 1)",
            "1, 2",
            "1e5",
            "2 % 3",
            "1 == 1",
            "\"a\"",
            "α + 1",
            "1 / 0",
            "-1 / 0",
            "0 / 0",
            "sqrt(-1)",
            "ln(0)",
            "exp(1000)",
            "exp(1000) - exp(1000)",
            &"9".repeat(400),
        ] {
            assert_eq!(
                eval_refused(expression).as_deref(),
                Some("expression"),
                "{expression}"
            );
        }
        let nested = find("math-eval")
            .unwrap()
            .run(json!({ "expression": "max(1, max(2, 3))" }))
            .unwrap_err();
        assert!(nested.message.contains("second argument"), "{nested}");
        let long = format!("1{}", "+1".repeat(600));
        assert_eq!(eval_refused(&long).as_deref(), Some("expression"));
    }

    #[test]
    fn math_eval_never_panics_on_short_token_soup() {
        // Every sequence of up to `length` of these pieces either gives a
        // finite number or is refused naming the field.
        fn soup(pieces: &[&str], length: usize) {
            let mut texts = vec![String::new()];
            for _ in 0..length {
                let mut longer = Vec::new();
                for text in &texts {
                    for piece in pieces {
                        longer.push(format!("{text}{piece}"));
                    }
                }
                for text in &longer {
                    let input = super::MathEvalInput {
                        expression: text.clone(),
                    };
                    match super::math_eval(input) {
                        Ok(output) => assert!(output.result.is_finite(), "{text}"),
                        Err(error) => {
                            assert_eq!(error.field.as_deref(), Some("expression"), "{text}")
                        }
                    }
                }
                texts = longer;
            }
        }
        soup(
            &[
                "1", ".", "x", "e", "pi", "π", "-", "+", "*", "/", "^", "(", ")", ",", "sin",
                "min", " ", "{", "}",
            ],
            4,
        );
        soup(
            &["1", ".", "x", "e", "-", "^", "(", ")", ",", "sin", "min"],
            5,
        );
    }

    #[test]
    fn math_eval_handles_the_largest_expressions_quickly() {
        let started = std::time::Instant::now();
        let nested = format!("{}1{}", "(".repeat(511), ")".repeat(511));
        assert_eq!(eval(&nested)["result"], 1.0);
        assert_eq!(eval(&format!("{}1", "-".repeat(1023)))["result"], -1.0);
        let calls = format!("{}16{}", "sqrt(".repeat(150), ")".repeat(150));
        assert_eq!(eval(&calls)["result"], 1.0);
        let negated = format!("{}1{}", "-(".repeat(340), ")".repeat(340));
        assert_eq!(eval(&negated)["result"], 1.0);
        let sum = format!("1{}", "+1".repeat(511));
        assert_eq!(eval(&sum)["result"], 512.0);
        let mixed = format!("1{}", "-2*3^1/2".repeat(127));
        assert!(close(&eval(&mixed)["result"], 1.0 - 127.0 * 3.0));
        let mins = format!("{}1{}", "min(".repeat(146), ",2)".repeat(146));
        assert_eq!(eval(&mins)["result"], 1.0);
        let commas = format!("{}1{}", "max(".repeat(127), ", 1)".repeat(127));
        assert_eq!(eval(&commas)["result"], 1.0);
        let calls = format!("{}0", "min(1,2)+".repeat(113));
        assert_eq!(eval(&calls)["result"], 113.0);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    fn stats(values: Value) -> Value {
        find("statistics")
            .unwrap()
            .run(json!({ "values": values }))
            .unwrap()
    }

    #[test]
    fn statistics_of_a_classic_data_set() {
        // [2, 4, 4, 4, 5, 5, 7, 9]: mean 5, population standard deviation 2
        // (the example in Wikipedia's "Standard deviation"); sample variance
        // 32 / 7.
        let output = stats(json!([2, 4, 4, 4, 5, 5, 7, 9]));
        assert_eq!(output["count"], 8);
        assert_eq!(output["sum"], 40.0);
        assert_eq!(output["min"], 2.0);
        assert_eq!(output["max"], 9.0);
        assert_eq!(output["mean"], 5.0);
        assert_eq!(output["median"], 4.5);
        assert_eq!(output["modes"], json!([4.0]));
        assert_eq!(output["modeFrequency"], 3);
        assert!(close(&output["populationVariance"], 4.0));
        assert!(close(&output["populationStdDev"], 2.0));
        assert!(close(&output["sampleVariance"], 32.0 / 7.0));
        assert!(close(&output["sampleStdDev"], (32.0f64 / 7.0).sqrt()));
        assert_eq!(output["percentiles"]["p50"], 4.5);
    }

    #[test]
    fn statistics_percentiles_are_hyndman_fan_type_8() {
        // Hyndman & Fan (1996), definition 8; R's quantile(1:10, type = 8)
        // gives 2.916667 at 0.25, 5.5 at 0.5 and 8.083333 at 0.75. statrs'
        // own example: percentile 50 of 1..10 is 5.5.
        let output = stats(json!([1, 5, 3, 4, 10, 9, 6, 7, 8, 2]));
        let p = &output["percentiles"];
        assert!(close(&p["p25"], 35.0 / 12.0));
        assert_eq!(p["p50"], 5.5);
        assert!(close(&p["p75"], 97.0 / 12.0));
        assert_eq!(p["p99"], 10.0);
        assert_eq!(output["modes"], json!([]));
        assert_eq!(output["modeFrequency"], 1);
        let one = stats(json!([3.5]));
        assert_eq!(one["sampleVariance"], Value::Null);
        assert_eq!(one["populationStdDev"], 0.0);
        assert_eq!(one["median"], 3.5);
        assert_eq!(one["percentiles"]["p99"], 3.5);
        let bimodal = stats(json!([1, 1, 2, 3, 3]));
        assert_eq!(bimodal["modes"], json!([1.0, 3.0]));
    }

    #[test]
    fn statistics_refuses_bad_values() {
        let refused = |values: Value| {
            find("statistics")
                .unwrap()
                .run(json!({ "values": values }))
                .unwrap_err()
                .field
        };
        assert_eq!(refused(json!([])).as_deref(), Some("values"));
        assert_eq!(refused(json!([1, "2"])).as_deref(), Some("values/1"));
        assert_eq!(refused(json!([1e308, 1e308])).as_deref(), Some("values"));
        let too_many = vec![1; 100_001];
        assert_eq!(refused(json!(too_many)).as_deref(), Some("values"));
    }
}
