//! What every tool must satisfy, checked over [`crate::all`].

use crate::{all, Method, MAX_INPUT_BYTES};
use std::collections::HashSet;

#[test]
fn slugs_and_routes_are_unique_and_well_formed() {
    let mut slugs = HashSet::new();
    let mut routes = HashSet::new();
    for tool in all() {
        assert!(slugs.insert(tool.slug), "{} twice", tool.slug);
        assert!(
            routes.insert((tool.method, tool.path)),
            "{} {} twice",
            tool.method.as_str(),
            tool.path
        );
        assert!(
            tool.slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{}",
            tool.slug
        );
        assert!(tool.path.starts_with("/api/"), "{}", tool.slug);
        assert!(
            !tool.name.is_empty() && !tool.description.is_empty(),
            "{}",
            tool.slug
        );
        assert!(
            !tool.category.is_empty() && !tool.tags.is_empty(),
            "{}",
            tool.slug
        );
        assert!(tool.price > 0, "{}", tool.slug);
    }
}

#[test]
fn every_example_runs() {
    for tool in all() {
        let example = (tool.example)();
        assert!(example.is_object(), "{}", tool.slug);
        assert!(
            serde_json::to_vec(&example).unwrap().len() < MAX_INPUT_BYTES,
            "{}",
            tool.slug
        );
        if let Err(error) = tool.run(example) {
            panic!("{}'s example fails: {error}", tool.slug);
        }
    }
}

#[test]
fn every_schema_is_an_object_that_refuses_unknown_fields() {
    for tool in all() {
        let schema = (tool.input_schema)();
        assert_eq!(schema["type"], "object", "{}", tool.slug);
        assert_eq!(schema["additionalProperties"], false, "{}", tool.slug);
        let mut input = (tool.example)();
        input["surely_not_a_field"] = serde_json::json!(1);
        let error = tool.run(input).unwrap_err();
        assert!(
            error.to_string().contains("surely_not_a_field"),
            "{}: {error}",
            tool.slug
        );
    }
}

#[test]
fn every_text_field_is_bounded() {
    // A string or array without a bound would let one call run unbounded.
    fn check(slug: &str, path: &str, schema: &serde_json::Value) {
        let types: Vec<&str> = match &schema["type"] {
            serde_json::Value::String(one) => vec![one.as_str()],
            serde_json::Value::Array(many) => many.iter().filter_map(|t| t.as_str()).collect(),
            _ => vec![],
        };
        if types.contains(&"string") && schema.get("enum").is_none() {
            assert!(
                schema.get("maxLength").is_some(),
                "{slug}: {path} has no maxLength"
            );
        }
        if types.contains(&"array") {
            assert!(
                schema.get("maxItems").is_some(),
                "{slug}: {path} has no maxItems"
            );
            check(slug, &format!("{path}[]"), &schema["items"]);
        }
        if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
            for (name, property) in properties {
                check(slug, &format!("{path}.{name}"), property);
            }
        }
    }
    for tool in all() {
        check(tool.slug, "", &(tool.input_schema)());
    }
}

#[test]
fn get_tools_take_only_scalar_fields() {
    // A query string has no nesting: a GET tool's fields are all scalars.
    for tool in all().filter(|tool| tool.method == Method::Get) {
        let schema = (tool.input_schema)();
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            let types = property["type"].to_string();
            assert!(
                !types.contains("object") && !types.contains("array"),
                "{}: {name} is not a scalar",
                tool.slug
            );
        }
    }
}
