//! The tools, on the agent402 face: every tool of the catalog at its own
//! route. A `GET` tool takes its input from the query string (and path
//! parameters, e.g. `/api/convert/{conversion}`), each value typed as the
//! tool's input schema types the field; a `POST` tool takes a JSON object
//! body. Answers are the tool's JSON output; errors are `{"error": "..."}`,
//! a refused input 400 naming the field. Input size and shape are the
//! tools service's to check, once, for every caller.

use crate::errors::ApiError;
use crate::routes::{FaceRoutes, PaidRoute};
use crate::tools::ToolsClient;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use serde_json::Value;
use std::collections::BTreeMap;
use tessera_error::Error;

pub(crate) fn routes() -> FaceRoutes {
    tessera_catalog::routes()
        .iter()
        .filter(|route| route.tool.is_some())
        .fold(
            FaceRoutes::new(tessera_catalog::Face::Agent402),
            |face, route| match route.method {
                tessera_catalog::Method::Get => face.handle(&[route.id], by_query),
                _ => face.handle(&[route.id], by_body),
            },
        )
}

fn slug_of(route: &PaidRoute) -> Result<&'static str, Error> {
    route
        .0
        .tool
        .ok_or_else(|| Error::internal("a tool route names no tool"))
}

async fn by_query(
    State(tools): State<ToolsClient>,
    Extension(route): Extension<PaidRoute>,
    path: Option<Path<BTreeMap<String, String>>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let slug = slug_of(&route)?;
    let query = query.unwrap_or_default();
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if let Some(Path(params)) = path {
        pairs.extend(params);
    }
    let schema = tessera_toolbox::input_schema(slug)
        .ok_or_else(|| Error::internal(format!("the tool {slug} has no schema")))?;
    let input = tessera_toolbox::query_input(schema, pairs).map_err(Error::from)?;
    Ok(Json(tools.invoke(slug, input.to_string()).await?))
}

async fn by_body(
    State(tools): State<ToolsClient>,
    Extension(route): Extension<PaidRoute>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let slug = slug_of(&route)?;
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        "{}".to_string()
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| Error::invalid("INVALID_BODY", "the body is not UTF-8 text"))?
    };
    Ok(Json(tools.invoke(slug, input).await?))
}
