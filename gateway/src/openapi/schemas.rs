//! Schema shorthands for the hand-written shapes (the free routes' JSON, the
//! error bodies, the x402 quote), and the shared components: error bodies,
//! the 402 response, the payment security schemes.

use crate::errors::{category, Family};
use std::collections::BTreeSet;
use tessera_error::ErrorKind;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{Content, Header, RefOr, Response, ResponseBuilder};

/// Component name of the agent402 and 2s.io error body.
pub(super) const ERROR: &str = "Error";
/// Component name of the per-agent API's error body.
pub(super) const AGENTS_ERROR: &str = "AgentsError";
/// Component name of the x402 quote.
pub(super) const PAYMENT_REQUIRED: &str = "PaymentRequired";

/// The security schemes: how a paid call is paid (or, in FREE_MODE, who the
/// caller says it is).
pub(super) const X402: &str = "x402";
pub(super) const X402_V1: &str = "x402v1";
pub(super) const POW: &str = "pow";
pub(super) const AGENT_ID: &str = "agentId";

fn typed(kind: Type, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(kind)
        .description(Some(description))
}

pub(super) fn string(description: &str) -> Schema {
    typed(Type::String, description).into()
}

pub(super) fn integer(description: &str) -> Schema {
    typed(Type::Integer, description).into()
}

pub(super) fn boolean(description: &str) -> Schema {
    typed(Type::Boolean, description).into()
}

/// One of `values`.
pub(super) fn one_of_strings(description: &str, values: &[&str]) -> Schema {
    typed(Type::String, description)
        .enum_values(Some(values.iter().copied()))
        .into()
}

/// Any JSON value.
pub(super) fn any(description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(description))
        .into()
}

/// An object with these properties (in order), of which `required` must be
/// there; other properties are allowed (the shape may grow).
pub(super) fn object(
    description: &str,
    properties: Vec<(&str, RefOr<Schema>)>,
    required: &[&str],
) -> Schema {
    let mut builder = typed(Type::Object, description);
    for (name, schema) in properties {
        builder = builder.property(name, schema);
    }
    for name in required {
        builder = builder.required(*name);
    }
    builder.into()
}

/// An object whose properties are exactly these.
pub(super) fn closed_object(
    description: &str,
    properties: Vec<(&str, RefOr<Schema>)>,
    required: &[&str],
) -> Schema {
    match object(description, properties, required) {
        Schema::Object(mut object) => {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            Schema::Object(object)
        }
        other => other,
    }
}

pub(super) fn array(description: &str, items: impl Into<RefOr<Schema>>) -> Schema {
    ArrayBuilder::new()
        .description(Some(description))
        .items(items.into())
        .into()
}

/// Exactly one of `schemas`.
pub(super) fn one_of(description: &str, schemas: Vec<RefOr<Schema>>) -> RefOr<Schema> {
    let mut builder = OneOfBuilder::new().description(Some(description));
    for schema in schemas {
        builder = builder.item(schema);
    }
    RefOr::T(builder.into())
}

/// A reference to the component schema `name`.
pub(super) fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name))
}

/// A JSON response.
pub(super) fn json_response(description: &str, schema: impl Into<RefOr<Schema>>) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(schema)))
        .build()
}

/// A text response of `content_type`.
pub(super) fn text_response(description: &str, content_type: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            content_type,
            Content::new(Some(string("The document, as text"))),
        )
        .build()
}

/// A response header holding text.
pub(super) fn header(description: &str) -> Header {
    let mut header = Header::new(ObjectBuilder::new().schema_type(Type::String));
    header.description = Some(description.to_string());
    header
}

/// The component name of `family`'s error body.
pub(super) fn error_body(family: Family) -> &'static str {
    match family {
        // gRPC methods are not in the document; the bare body if ever asked.
        Family::Agent402 | Family::TwoS | Family::Grpc => ERROR,
        Family::Agents => AGENTS_ERROR,
    }
}

/// An error answer in `family`'s body; a 429 also says when to retry.
pub(super) fn error_response(family: Family, status: u16, description: &str) -> Response {
    let mut response = json_response(description, reference(error_body(family)));
    if status == 429 {
        response.headers.insert(
            "Retry-After".into(),
            header("Seconds to wait before the next request"),
        );
        response.headers.insert(
            "RateLimit".into(),
            header("What is left of the limit (draft-ietf-httpapi-ratelimit-headers)"),
        );
        response.headers.insert(
            "RateLimit-Policy".into(),
            header("The limit (draft-ietf-httpapi-ratelimit-headers)"),
        );
    }
    if status == 409 {
        response.headers.insert(
            "Retry-After".into(),
            header("Seconds to wait before retrying the same Idempotency-Key"),
        );
    }
    response
}

/// The error bodies, by component name.
pub(super) fn error_bodies() -> Vec<(&'static str, Schema)> {
    let categories: BTreeSet<&str> = ErrorKind::ALL.into_iter().map(category).collect();
    let categories: Vec<&str> = categories.into_iter().collect();
    let agents_error = object(
        "The per-agent API's error",
        vec![
            (
                "category",
                one_of_strings("What kind of error", &categories).into(),
            ),
            ("message", string("What went wrong").into()),
            (
                "details",
                ObjectBuilder::new()
                    .description(Some(
                        "Facts about the error, e.g. `caller` and `scope_owner`",
                    ))
                    .additional_properties(Some(string("A fact")))
                    .into(),
            ),
        ],
        &["category", "message"],
    );
    vec![
        (
            ERROR,
            object(
                "An error of the agent402 and 2s.io faces and of the free routes: `{\"error\": \"<message>\"}`",
                vec![("error", string("What went wrong").into())],
                &["error"],
            ),
        ),
        (
            AGENTS_ERROR,
            object(
                "An error of the per-agent API (`/agents/{id}/memory`): `{\"error\": {\"category\", \"message\", \"details\"?}}`",
                vec![("error", agents_error.into())],
                &["error"],
            ),
        ),
    ]
}

/// The x402 quote a 402 carries (x402 v2 `PaymentRequired`).
pub(super) fn payment_required() -> Schema {
    let resource = object(
        "What the payment buys",
        vec![
            ("url", string("The resource's URL").into()),
            (
                "description",
                string("The catalog route, what it does, method and path").into(),
            ),
            ("mimeType", string("The answer's media type").into()),
        ],
        &["url"],
    );
    let requirements = object(
        "One way to pay: the `exact` scheme, an EIP-3009 transferWithAuthorization of `amount` of `asset` to `payTo`",
        vec![
            ("scheme", string("`exact`").into()),
            ("network", string("CAIP-2 network, e.g. `eip155:8453`").into()),
            ("amount", string("Atomic units of the asset (USDC: 6 decimals), decimal").into()),
            ("asset", string("The token's address").into()),
            ("payTo", string("Where the payment goes").into()),
            ("maxTimeoutSeconds", integer("How long the authorization must stay valid").into()),
            ("extra", any("For EIP-3009 assets: the token's EIP-712 `{name, version}`").into()),
        ],
        &["scheme", "network", "amount", "asset", "payTo", "maxTimeoutSeconds"],
    );
    object(
        "The x402 quote (the `PAYMENT-REQUIRED` header's JSON)",
        vec![
            ("x402Version", integer("2").into()),
            (
                "error",
                string("Why an attached payment was refused").into(),
            ),
            ("resource", resource.into()),
            ("accepts", array("The ways to pay", requirements).into()),
        ],
        &["x402Version", "resource", "accepts"],
    )
}

/// The 402 answer of every paid route called without a (valid) payment.
pub(super) fn payment_required_response() -> Response {
    let mut response = json_response(
        "Payment required: the x402 quote, in the `PAYMENT-REQUIRED` header (base64 JSON, x402 v2) and, the same JSON, in the body. Pay it and send the call again with `PAYMENT-SIGNATURE` (v1: `X-PAYMENT`); a tool (tier cpu) may instead be paid with `X-Pow-Solution`.",
        reference(PAYMENT_REQUIRED),
    );
    response.headers.insert(
        "PAYMENT-REQUIRED".into(),
        header("The x402 v2 PaymentRequired JSON, base64"),
    );
    response
        .headers
        .insert("Cache-Control".into(), header("`no-store`"));
    response
}

fn api_key(header: &str, description: &str) -> SecurityScheme {
    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
        header,
        description,
    )))
}

/// The ways to pay for (or, in FREE_MODE, to name the caller of) a paid
/// call, by scheme name.
pub(super) fn security_schemes() -> Vec<(&'static str, SecurityScheme)> {
    vec![
        (
            X402,
            api_key(
                "PAYMENT-SIGNATURE",
                "x402 v2: the PaymentPayload for the 402 quote, base64 JSON (an EIP-3009 transferWithAuthorization signed by the payer). The payer's wallet is the caller's memory namespace. A served call answers `PAYMENT-RESPONSE`; a call that fails is not charged.",
            ),
        ),
        (
            X402_V1,
            api_key(
                "X-PAYMENT",
                "x402 v1: the payment payload, base64 JSON; answered with `X-PAYMENT-RESPONSE`.",
            ),
        ),
        (
            POW,
            api_key(
                "X-Pow-Solution",
                "Proof of work, tools (tier cpu) only and only when payments are on: `{token}:{nonce}` for a challenge from `GET /api/pow/challenge?slug=`, such that sha256(challenge + \":\" + nonce) has `difficulty` leading zero bits. One served call per solution.",
            ),
        ),
        (
            AGENT_ID,
            api_key(
                "X-Agent-Id",
                "FREE_MODE (development, nobody pays) only: the caller's memory namespace, as it says.",
            ),
        ),
    ]
}
