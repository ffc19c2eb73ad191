//! The paid operations: one per method and path of
//! [`crate::declared_routes`], its input and answer from the tool's schema
//! ([`super::tools`]) or the memory face's structs ([`super::memory`]), and
//! what every paid call shares: how it is paid (security, `x-price`,
//! `x-payment`), `Idempotency-Key`, the 402 quote and the error answers.

use super::schemas::{self, error_response, header, string};
use super::shape::{shared_error, Shape, SHARED_ERRORS};
use super::{memory, path_parameters, template, tools, Draft};
use crate::errors::Family;
use serde_json::{json, Value};
use tessera_catalog::{Route, Tier, When};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Ref, RefOr, Required, Response};

/// Component name of the 402 answer.
pub(super) const PAYMENT_REQUIRED_RESPONSE: &str = "PaymentRequired";

/// The currency prices are in: USDC, 6 decimals (the catalog's unit).
const CURRENCY: &str = "USDC";
const DECIMALS: u32 = 6;

/// Adds an operation for every declared paid route.
pub(super) fn add(draft: &mut Draft) {
    for declared in crate::declared_routes()
        .into_iter()
        .filter(|declared| declared.face.is_rest())
    {
        let routes: Vec<&'static Route> = declared
            .ids
            .iter()
            .map(|id| tessera_catalog::route(id).expect("a declared route is in the catalog"))
            .collect();
        let path = template(declared.path);
        let method = http_method(declared.method);
        let shape = match routes[0].tool {
            Some(slug) => tools::shape(draft, &path, &method, routes[0], slug),
            None => memory::shape(draft, &routes).unwrap_or_else(|| memory::base(routes[0])),
        };
        let operation = finish(shape, &routes, &path);
        draft.add(method, &path, operation);
    }
}

pub(super) fn http_method(method: tessera_catalog::Method) -> HttpMethod {
    match method {
        tessera_catalog::Method::Get => HttpMethod::Get,
        tessera_catalog::Method::Post => HttpMethod::Post,
        tessera_catalog::Method::Put => HttpMethod::Put,
        tessera_catalog::Method::Delete => HttpMethod::Delete,
    }
}

/// The price of one catalog route, as `x-price` says it.
pub(super) fn price(route: &Route) -> Value {
    json!({
        "routeId": route.id,
        "amount": route.price.to_string(),
        "currency": CURRENCY,
        "decimals": DECIMALS,
        "tier": route.tier.as_str(),
    })
}

/// `x-price`: the price object, or, for routes told apart by the query,
/// one per route with `when`.
fn prices(routes: &[&'static Route]) -> Value {
    if let [route] = routes {
        return price(route);
    }
    routes
        .iter()
        .map(|route| {
            let mut price = price(route);
            price["when"] = json!(match route.when {
                When::Always => "always".to_string(),
                When::QueryHas(name) => format!("the query has `{name}`"),
                When::QueryLacks(name) => format!("the query lacks `{name}`"),
            });
            price
        })
        .collect()
}

fn price_line(routes: &[&'static Route]) -> String {
    let each: Vec<String> = routes
        .iter()
        .map(|route| {
            format!(
                "`{}` {} atomic units of {CURRENCY} (${})",
                route.id,
                route.price,
                route.price as f64 / 10f64.powi(DECIMALS as i32)
            )
        })
        .collect();
    format!(
        "Price: {} (the catalog's default; the 402 quote is what is charged).",
        each.join("; ")
    )
}

fn requirement(scheme: &str) -> SecurityRequirement {
    SecurityRequirement::new::<&str, [&str; 0], &str>(scheme, [])
}

/// The parameters of `path` the shape did not describe: the agent.
fn missing_path_parameters(path: &str, described: &[Parameter]) -> Vec<Parameter> {
    path_parameters(path)
        .into_iter()
        .filter(|name| {
            !described
                .iter()
                .any(|p| p.name == *name && p.parameter_in == ParameterIn::Path)
        })
        .map(|name| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(if name == "id" {
                    "The agent: its memory namespace (with payments on, the paying wallet's address; a caller that is someone else is refused, 403)"
                } else {
                    "A path parameter"
                }))
                .schema(Some(string("A path segment")))
                .build()
        })
        .collect()
}

/// The shape, with what every paid call shares.
fn finish(shape: Shape, routes: &[&'static Route], path: &str) -> utoipa::openapi::path::Operation {
    let route = routes[0];
    let family = Family::from(route.face);
    let tier = route.tier;
    let description = match shape.description {
        Some(text) => format!("{text}\n\n{}", price_line(routes)),
        None => price_line(routes),
    };
    let ids: Vec<&str> = routes.iter().map(|route| route.id).collect();
    let mut operation = OperationBuilder::new()
        .tag(shape.tag)
        .operation_id(Some(ids.join("-or-")))
        .summary(Some(shape.summary))
        .description(Some(description))
        .request_body(shape.body);
    let missing = missing_path_parameters(path, &shape.parameters);
    for parameter in missing.into_iter().chain(shape.parameters) {
        operation = operation.parameter(parameter);
    }
    operation = operation.parameter(
        ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Retry safely: the same key, method, path and payment answer the first result (`X-Idempotent-Replay: true`) and are not charged again. At most 255 characters.",
            ))
            .schema(Some(string("A unique key, e.g. a UUID")))
            .build(),
    );

    let (status, mut ok) = shape.ok;
    ok.headers.insert(
        "PAYMENT-RESPONSE".into(),
        header("x402 v2: the settlement, base64 JSON (paid with PAYMENT-SIGNATURE)"),
    );
    ok.headers.insert(
        "X-PAYMENT-RESPONSE".into(),
        header("x402 v1: the settlement, base64 JSON (paid with X-PAYMENT)"),
    );
    ok.headers.insert(
        "X-Idempotent-Replay".into(),
        header("`true` when this is the stored answer to an earlier call with the same Idempotency-Key"),
    );
    operation = operation.response(status, ok);
    for (status, answer) in shape.extra {
        operation = operation.response(status, answer);
    }
    operation = operation.response(
        "402",
        RefOr::<Response>::Ref(Ref::from_response_name(PAYMENT_REQUIRED_RESPONSE)),
    );
    let mut errors = shape.errors;
    errors.push((
        400,
        "Invalid input: the message names the parameter or field",
    ));
    errors.sort_by_key(|(status, _)| *status);
    errors.dedup_by_key(|(status, _)| *status);
    for (status, description) in errors {
        operation = operation.response(
            status.to_string(),
            error_response(family, status, description),
        );
    }
    for (status, name, _) in SHARED_ERRORS {
        operation = operation.response(*status, shared_error(family, name));
    }

    let mut payment = vec!["x402"];
    operation = operation
        .security(requirement(schemas::X402))
        .security(requirement(schemas::X402_V1));
    match tier {
        Tier::Cpu => {
            payment.push("pow");
            operation = operation.security(requirement(schemas::POW));
        }
        Tier::Wallet => operation = operation.security(requirement(schemas::AGENT_ID)),
    }
    let extensions = ExtensionsBuilder::new()
        .add("x-price", prices(routes))
        .add("x-payment", json!(payment))
        .build();
    operation.extensions(Some(extensions)).build()
}
