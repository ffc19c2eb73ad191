//! Canonical JSON text (RFC 8785 shape): object members sorted by their UTF-16
//! code units, no insignificant white space, and one spelling per number, so
//! that JSON equality is byte equality of canonical texts. Unlike the RFC,
//! integers keep all 64 bits (the RFC rounds them through an IEEE double): an
//! integral float within i64 is written as that integer, and `1.0 == 1`.

use serde_json::Value;
use tessera_error::Error;

/// Parses JSON text and returns its canonical form.
pub fn canonicalize_text(text: &str) -> Result<String, Error> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid("INVALID_JSON", format!("value is not valid JSON: {e}")))?;
    Ok(canonicalize(&value))
}

pub fn canonicalize(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (name, member)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(name, out);
                out.push(':');
                write_value(member, out);
            }
            out.push('}');
        }
    }
}

fn write_number(n: &serde_json::Number, out: &mut String) {
    if n.is_i64() || n.is_u64() {
        out.push_str(&n.to_string());
        return;
    }
    let f = n.as_f64().unwrap_or(0.0);
    out.push_str(&float_text(f));
}

/// The integer a float is, when it is a whole number within 64 bits: the
/// value canonical JSON writes as an integer (`1.0` → `1`, `1e3` → `1000`).
pub fn integral_i64(f: f64) -> Option<i64> {
    const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    (f.fract() == 0.0 && (-I64_LIMIT..I64_LIMIT).contains(&f)).then_some(f as i64)
}

/// The canonical spelling of a float result (also used by increments).
pub fn float_text(f: f64) -> String {
    if let Some(i) = integral_i64(f) {
        return i.to_string();
    }
    serde_json::Number::from_f64(f)
        .map(|n| n.to_string())
        .unwrap_or_else(|| "null".to_string())
}

fn write_string(s: &str, out: &mut String) {
    // serde_json escapes exactly what RFC 8785 requires (", \, and control
    // characters, with lower-case \u00xx) and nothing else.
    out.push_str(&serde_json::to_string(s).expect("strings always serialize"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        canonicalize_text(text).unwrap()
    }

    #[test]
    fn object_key_order_does_not_matter() {
        assert_eq!(
            canon(r#"{"b":1,"a":{"d":[1,2],"c":null}}"#),
            r#"{"a":{"c":null,"d":[1,2]},"b":1}"#
        );
        assert_eq!(canon(r#"{ "a" : 1 , "b":2 }"#), canon(r#"{"b":2,"a":1}"#));
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // U+1F600 (surrogates D83D..) sorts before U+FB33 in UTF-16, after it in UTF-8.
        assert_eq!(
            canon("{\"\u{fb33}\":1,\"\u{1f600}\":2}"),
            "{\"\u{1f600}\":2,\"\u{fb33}\":1}"
        );
    }

    #[test]
    fn integers_stay_exact_and_integral_floats_become_integers() {
        assert_eq!(canon("9223372036854775807"), "9223372036854775807");
        assert_eq!(canon("-9223372036854775808"), "-9223372036854775808");
        assert_eq!(canon("18446744073709551615"), "18446744073709551615");
        assert_eq!(canon("1.0"), "1");
        assert_eq!(canon("-0.0"), "0");
        assert_eq!(canon("1.5"), "1.5");
        assert_eq!(canon("1e2"), "100");
        assert_eq!(canon("1e300"), "1e+300");
    }

    #[test]
    fn strings_stay_strings() {
        assert_eq!(canon(r#""123""#), r#""123""#);
        assert_eq!(canon(r#""a\u0001\"/é""#), "\"a\\u0001\\\"/é\"");
    }

    #[test]
    fn invalid_json_is_rejected() {
        assert_eq!(canonicalize_text("{").unwrap_err().reason, "INVALID_JSON");
        assert!(canonicalize_text("").is_err());
    }
}
