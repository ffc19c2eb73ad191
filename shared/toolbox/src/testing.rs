//! What the family tests share: run a tool by slug, and read which field a
//! refusal names.

use crate::find;
use serde_json::Value;

/// The output of tool `slug` on `input`; panics naming the tool and the
/// input if it refuses.
pub fn run(slug: &str, input: Value) -> Value {
    find(slug)
        .unwrap_or_else(|| panic!("no tool {slug}"))
        .run(input.clone())
        .unwrap_or_else(|error| panic!("{slug} {input}: {error}"))
}

/// The field tool `slug`'s refusal of `input` names (`None`: the input as a
/// whole); panics if it does not refuse.
pub fn field_of_error(slug: &str, input: Value) -> Option<String> {
    match find(slug)
        .unwrap_or_else(|| panic!("no tool {slug}"))
        .run(input.clone())
    {
        Ok(output) => panic!("{slug} {input}: not refused, answered {output}"),
        Err(error) => error.field,
    }
}

/// As [`field_of_error`], for a refusal that must name a field.
pub fn refused(slug: &str, input: Value) -> String {
    let input_text = input.to_string();
    field_of_error(slug, input).unwrap_or_else(|| panic!("{slug} {input_text}: no field named"))
}
