//! The memory operations of the three faces: bodies, queries and answers are
//! the faces' own structs (their `ToSchema` / `IntoParams` derives), so the
//! document follows them.

use super::schemas::{any, header, json_response, one_of, string};
use super::shape::Shape;
use super::Draft;
use crate::faces::{agent402, agents, twos};
use tessera_catalog::Route;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{Content, RefOr, Required, Response, ResponseBuilder};
use utoipa::IntoParams;

fn body(schema: RefOr<Schema>) -> Option<utoipa::openapi::request_body::RequestBody> {
    Some(
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content("application/json", Content::new(Some(schema)))
            .build(),
    )
}

fn params<T: IntoParams>() -> Vec<Parameter> {
    T::into_params(|| None)
}

fn if_match() -> Parameter {
    ParameterBuilder::new()
        .name("If-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Only if the entry's etag is this (bare, quoted or weak); otherwise 412",
        ))
        .schema(Some(string("An etag")))
        .build()
}

/// A 200 with `schema`; 2s.io also sends the entry's etag.
fn ok(description: &str, schema: RefOr<Schema>) -> (&'static str, Response) {
    ("200", json_response(description, schema))
}

fn with_etag(mut ok: (&'static str, Response)) -> (&'static str, Response) {
    ok.1.headers
        .insert("ETag".into(), header("The entry's etag, quoted"));
    ok
}

const NOT_FOUND: (u16, &str) = (404, "The key is not there");
const PRECONDITION: (u16, &str) = (412, "If-Match does not match the entry's etag");
const FORBIDDEN: (u16, &str) = (
    403,
    "Another namespace: agent402's `owner` without its grant, or an `/agents/{id}` that is not the caller",
);
const UNIDENTIFIED: (u16, &str) = (
    401,
    "FREE_MODE only: no X-Agent-Id names the caller's namespace",
);

/// What every memory operation starts from: the route's tag and summary,
/// and the refusals any memory call may get.
pub(super) fn base(route: &Route) -> Shape {
    Shape {
        tag: match route.face {
            tessera_catalog::Face::Agent402 => "memory",
            tessera_catalog::Face::TwoS => "2s.io memory",
            tessera_catalog::Face::Agents => "agent memory",
            tessera_catalog::Face::Grpc => unreachable!("gRPC methods are not REST operations"),
        },
        summary: route.summary.to_string(),
        description: None,
        parameters: Vec::new(),
        body: None,
        ok: ok("The answer", any("Not described yet").into()),
        extra: Vec::new(),
        errors: match route.face {
            tessera_catalog::Face::Agent402 => vec![UNIDENTIFIED, FORBIDDEN],
            tessera_catalog::Face::TwoS => vec![UNIDENTIFIED],
            tessera_catalog::Face::Agents => vec![FORBIDDEN],
            tessera_catalog::Face::Grpc => unreachable!("gRPC methods are not REST operations"),
        },
    }
}

/// The shape of the memory operation serving `routes` (one method and
/// path); `None` for a route this module does not know (the tests fail).
pub(super) fn shape(draft: &mut Draft, routes: &[&'static Route]) -> Option<Shape> {
    let mut shape = base(routes[0]);
    match routes[0].id {
        "memory.get" | "memory.list" => {
            shape.summary = "Read one key (`?key=`), or list keys".into();
            shape.parameters = params::<agent402::ReadQuery>();
            let entry = draft.component::<agent402::EntryView>();
            let list = draft.component::<agent402::ListView>();
            shape.ok = ok(
                "With `key`: the entry; without: a page of the namespace",
                one_of("The entry, or a page", vec![entry, list]),
            );
            shape.errors.push(NOT_FOUND);
        }
        "memory.set" => {
            shape.body = body(draft.component::<agent402::WriteBody>());
            shape.parameters = vec![if_match()];
            let entry = draft.component::<agent402::EntryView>();
            let deleted = draft.component::<agent402::DeletedView>();
            shape.ok = ok(
                "The entry as written, or the outcome of a delete",
                one_of("The entry, or the delete's outcome", vec![entry, deleted]),
            );
            shape.errors.push(PRECONDITION);
        }
        "memory.cas" => {
            shape.body = body(draft.component::<agent402::CasBody>());
            shape.ok = ok("Whether it swapped", draft.component::<agent402::CasView>());
        }
        "memory.incr" => {
            shape.body = body(draft.component::<agent402::IncrBody>());
            shape.ok = ok("The counter", draft.component::<agent402::IncrView>());
        }
        "memory.grant" => {
            shape.body = body(draft.component::<agent402::GrantBody>());
            shape.ok = ok("The grant", draft.component::<agent402::GrantView>());
        }
        "memory.revoke" => {
            shape.body = body(draft.component::<agent402::RevokeBody>());
            shape.ok = ok(
                "Whether a grant was revoked",
                draft.component::<agent402::RevokeView>(),
            );
        }
        "memory.watch" => {
            shape.summary =
                "Wait for the next change to a key or under a prefix (long poll)".into();
            shape.parameters = params::<agent402::WatchQuery>();
            shape.ok = ok(
                "The first change after the position asked for",
                draft.component::<agent402::WatchView>(),
            );
            let mut quiet = ResponseBuilder::new()
                .description("No change within timeoutSeconds; poll again from X-Watch-Cursor")
                .build();
            quiet.headers.insert(
                "X-Watch-Cursor".into(),
                header("The watch's position: pass it as sinceCursor"),
            );
            shape.extra.push(("204", quiet));
        }
        "memory.grants" => {
            shape.ok = ok(
                "The active grants",
                draft.component::<agent402::GrantsView>(),
            );
        }
        "agent.memory.put" => {
            shape.body = body(draft.component::<twos::PutBody>());
            shape.parameters = vec![if_match()];
            shape.ok = with_etag(ok("The entry", draft.component::<twos::EntryView>()));
            shape.errors.push(PRECONDITION);
        }
        "agent.memory.get" => {
            shape.parameters = params::<twos::KeyQuery>();
            shape.ok = with_etag(ok("The entry", draft.component::<twos::EntryView>()));
            shape.errors.push(NOT_FOUND);
        }
        "agent.memory.list" => {
            shape.parameters = params::<twos::ListQuery>();
            shape.ok = ok("A page", draft.component::<twos::ListView>());
        }
        "agent.memory.delete" => {
            shape.body = body(draft.component::<twos::DeleteBody>());
            shape.parameters = vec![if_match()];
            shape.ok = ok(
                "Whether it was deleted",
                draft.component::<twos::DeletedView>(),
            );
            shape.errors.push(PRECONDITION);
        }
        "agents.memory.list" => {
            shape.ok = ok(
                "Every key and value",
                draft.component::<agents::MemoryView>(),
            );
        }
        "agents.memory.get" => {
            shape.parameters = params::<agents::KeyPath>();
            shape.ok = ok("The value", draft.component::<agents::KeyValue>());
            shape.errors.push(NOT_FOUND);
        }
        "agents.memory.put" => {
            shape.parameters = params::<agents::KeyPath>();
            shape.body = body(draft.component::<agents::ValueBody>());
            shape.ok = ok("The value as stored", draft.component::<agents::KeyValue>());
        }
        "agents.memory.delete" => {
            shape.parameters = params::<agents::KeyPath>();
            shape.ok = ("204", ResponseBuilder::new().description("Deleted").build());
            shape.errors.push(NOT_FOUND);
        }
        _ => return None,
    }
    Some(shape)
}
