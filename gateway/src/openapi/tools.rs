//! A tool's operation: its input from [`tessera_toolbox::input_schema`],
//! verbatim. A `POST` tool takes it as a JSON body (an empty body is `{}`);
//! a `GET` tool takes each property as a parameter, in the path where the
//! path names it (`/api/convert/{conversion}`), in the query otherwise, typed
//! as the property's schema types it. The schemas are put in place after
//! serialization ([`super::Slot`]): utoipa's typed schema would drop
//! keywords.

use super::schemas::{any, json_response};
use super::shape::Shape;
use super::{path_parameters, Draft, Slot};
use serde_json::Value;
use tessera_catalog::Route;
use utoipa::openapi::path::{HttpMethod, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{Content, Required};

const PLACEHOLDER: &str = "replaced by the tool's schema";

pub(super) fn shape(
    draft: &mut Draft,
    path: &str,
    method: &HttpMethod,
    route: &Route,
    slug: &str,
) -> Shape {
    let tool = tessera_toolbox::find(slug);
    let schema = tessera_toolbox::input_schema(slug)
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let example = tool.map(|tool| (tool.example)()).unwrap_or(Value::Null);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut shape = Shape {
        tag: "tools",
        summary: tool.map_or(slug, |tool| tool.name).to_string(),
        description: Some(route.summary.to_string()),
        parameters: Vec::new(),
        body: None,
        ok: (
            "200",
            json_response("The tool's output", any("The tool's JSON output")),
        ),
        errors: vec![(
            400,
            "The input does not match the tool's schema, or the tool refused it: the message names the field",
        )],
        extra: Vec::new(),
    };
    if *method == HttpMethod::Get {
        let in_path = path_parameters(path);
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, property) in properties {
            let is_path = in_path.contains(&name.as_str());
            let parameter = ParameterBuilder::new()
                .name(&name)
                .parameter_in(if is_path {
                    ParameterIn::Path
                } else {
                    ParameterIn::Query
                })
                .required(if is_path || required.contains(&name.as_str()) {
                    Required::True
                } else {
                    Required::False
                })
                .description(property["description"].as_str())
                .schema(Some(any(PLACEHOLDER)))
                .example(example.get(&name).cloned())
                .build();
            shape.parameters.push(parameter);
            draft.splice(path, method, Slot::Parameter(name), property);
        }
    } else {
        let content = Content::new(Some(any(PLACEHOLDER)));
        let content = utoipa::openapi::content::ContentBuilder::from(content)
            .example(Some(example))
            .build();
        let body = RequestBodyBuilder::new()
            .description(Some(
                "The tool's input, a JSON object (an empty body is `{}`)",
            ))
            .required(Some(if required.is_empty() {
                Required::False
            } else {
                Required::True
            }))
            .content("application/json", content)
            .build();
        shape.body = Some(body);
        draft.splice(path, method, Slot::Body, schema);
    }
    shape
}
