//! `GET /openapi.json`: an OpenAPI 3.1 document of every route the gateway
//! serves, generated from the code once per process (it depends on nothing
//! else) with utoipa's builders.
//!
//! | part | generated from |
//! | --- | --- |
//! | paid operations | [`crate::declared_routes`] (method, path, catalog ids), each id's [`tessera_catalog::Route`] (price, tier, face, summary) |
//! | a tool's input | [`tessera_toolbox::input_schema`] (JSON Schema 2020-12, which OpenAPI 3.1 schemas are): a `POST` tool's JSON body, a `GET` tool's path and query parameters (one per property) |
//! | memory bodies, queries, answers | the face's own structs (`utoipa::ToSchema` / `IntoParams` derives in `crate::faces`), as component schemas `agent402.*`, `twos.*`, `agents.*` |
//! | error bodies | each face's family (`crate::errors::Family`): `Error` `{"error": "…"}`, `AgentsError` `{"error": {"category", "message", "details"?}}` (categories from `crate::errors::category`) |
//! | free operations | [`crate::FREE_ROUTES`], described in [`free`] |
//!
//! Axum's catch-all `{*key}` is written `{key}` (a path parameter that may
//! contain `/`). `servers` is `/`: relative to where the document is served.
//!
//! Extension fields:
//! - `x-price` on a paid operation: `{"routeId", "amount", "currency":
//!   "USDC", "decimals": 6, "tier": "cpu"|"wallet"}`, `amount` the catalog's
//!   default price in atomic units, as a string (an operator's
//!   `PAYMENT_PRICES` may change it: the 402 quote is what is charged). An
//!   operation serving several catalog routes told apart by the query
//!   (`GET /api/memory`: `?key=` reads one key, without it lists) has an
//!   array of them, each with `when`.
//! - `x-payment` on a paid operation: how it may be paid, `["x402"]` or, for
//!   tier cpu (the tools), `["x402", "pow"]`.
//! - `x-free: true` on a free operation (no payment, no `x-price`).

mod free;
mod memory;
mod paid;
mod schemas;
mod shape;
mod tools;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApiBuilder, Paths, RefOr, Server};
use utoipa::ToSchema;

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| serde_json::to_string(&build()).expect("the document serializes"));

/// `GET /openapi.json`.
pub(crate) async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

/// The document under construction: operations by path, the component
/// schemas they refer to, and the raw JSON Schemas to put in place once
/// serialized (utoipa's typed `Schema` cannot hold every 2020-12 keyword).
pub(super) struct Draft {
    paths: Paths,
    schemas: BTreeMap<String, RefOr<Schema>>,
    splices: Vec<Splice>,
}

impl Draft {
    /// `T` (and the schemas it refers to) as components; a reference to it.
    fn component<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name();
        self.schemas.insert(name.to_string(), T::schema());
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        self.schemas.extend(nested);
        schemas::reference(&name)
    }

    fn add(&mut self, method: HttpMethod, path: &str, operation: Operation) {
        self.paths.add_path_operation(path, vec![method], operation);
    }

    /// Puts `schema` in `slot` of the operation `method path` once the
    /// document is serialized.
    fn splice(&mut self, path: &str, method: &HttpMethod, slot: Slot, schema: Value) {
        self.splices.push(Splice {
            path: path.to_string(),
            method: method_name(method),
            slot,
            schema,
        });
    }
}

/// Where in an operation a raw schema goes.
pub(super) enum Slot {
    /// The JSON request body's schema.
    Body,
    /// The schema of the (path or query) parameter of this name.
    Parameter(String),
}

struct Splice {
    path: String,
    method: &'static str,
    slot: Slot,
    schema: Value,
}

impl Splice {
    /// Replaces the placeholder schema the slot holds in `document`.
    fn apply(self, document: &mut Value) {
        let operation = &mut document["paths"][&self.path][self.method];
        let slot = match &self.slot {
            Slot::Body => operation.pointer_mut("/requestBody/content/application~1json/schema"),
            Slot::Parameter(name) => operation["parameters"]
                .as_array_mut()
                .and_then(|parameters| {
                    parameters
                        .iter_mut()
                        .find(|p| p["name"] == name.as_str() && p["in"] != "header")
                })
                .and_then(|parameter| parameter.get_mut("schema")),
        };
        let slot = slot
            .unwrap_or_else(|| panic!("no placeholder schema in {} {}", self.method, self.path));
        *slot = self.schema;
    }
}

fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "get",
        HttpMethod::Put => "put",
        HttpMethod::Post => "post",
        HttpMethod::Delete => "delete",
        HttpMethod::Options => "options",
        HttpMethod::Head => "head",
        HttpMethod::Patch => "patch",
        HttpMethod::Trace => "trace",
    }
}

/// An axum path pattern as an OpenAPI path template: `{*key}` → `{key}`.
pub(super) fn template(path: &str) -> String {
    path.replace("{*", "{")
}

/// The names of a path template's parameters, in order.
pub(super) fn path_parameters(template: &str) -> Vec<&str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

const DESCRIPTION: &str = "Paid coordination for AI agent fleets: a memory of your own (key-value with compare-and-swap locks, counters, TTL leases, etags and grants, on three faces: agent402 `/api/memory`, 2s.io `/api/agent/memory`, per-agent `/agents/{id}/memory`) and pure-CPU tools, paid per call with x402 (USDC, EIP-3009) or, for tools, with proof of work.\n\n\
Call a paid route without payment: it answers 402 with the quote in the `PAYMENT-REQUIRED` header (and body); pay it and send the call again with `PAYMENT-SIGNATURE`. A call that fails is not charged. Send `Idempotency-Key` to retry safely. In FREE_MODE (development) nobody pays and `X-Agent-Id` names the memory namespace.\n\n\
Extensions: `x-price` on each paid operation (`routeId`, `amount` in atomic units as a string, `currency`, `decimals`, `tier`; an array with `when` where one operation serves several catalog routes), `x-payment` (`x402`, and `pow` for tier cpu), `x-free: true` on each free operation.";

/// The whole document, as JSON.
pub(crate) fn build() -> Value {
    let mut draft = Draft {
        paths: Paths::new(),
        schemas: BTreeMap::new(),
        splices: Vec::new(),
    };
    paid::add(&mut draft);
    free::add(&mut draft);

    let mut components = ComponentsBuilder::new()
        .schemas_from_iter(draft.schemas)
        .schema(schemas::PAYMENT_REQUIRED, schemas::payment_required())
        .response(
            paid::PAYMENT_REQUIRED_RESPONSE,
            schemas::payment_required_response(),
        );
    for (name, response) in shape::shared_errors() {
        components = components.response(name, response);
    }
    for (name, schema) in schemas::error_bodies() {
        components = components.schema(name, schema);
    }
    for (name, scheme) in schemas::security_schemes() {
        components = components.security_scheme(name, scheme);
    }
    let tags = [
        (
            "tools",
            "Pure-CPU tools, paid per call with x402 or proof of work",
        ),
        (
            "memory",
            "agent402 memory: `/api/memory`, scoped to the paying wallet, with grants",
        ),
        ("2s.io memory", "2s.io memory: `/api/agent/memory`"),
        ("agent memory", "Per-agent memory: `/agents/{id}/memory`"),
        ("discovery", "Free: find tools, prices, this document"),
        ("payment", "Free: how to pay (x402 manifest, proof of work)"),
        ("service", "Free: health, readiness, metrics, statistics"),
    ]
    .into_iter()
    .map(|(name, description)| {
        TagBuilder::new()
            .name(name)
            .description(Some(description))
            .build()
    });
    let openapi = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Tessera")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION))
                .build(),
        )
        .servers(Some([Server::new("/")]))
        .paths(draft.paths)
        .components(Some(components.build()))
        .tags(Some(tags))
        .build();
    let mut document = serde_json::to_value(&openapi).expect("the document serializes");
    for splice in draft.splices {
        splice.apply(&mut document);
    }
    document
}

#[cfg(test)]
mod tests;
