//! Memory, on its three public REST faces: agent402's `/api/memory`, 2s.io's
//! `/api/agent/memory`, and the per-agent `/agents/{id}/memory`; and on the
//! public gRPC API, `tessera.memory.v1.MemoryService`, priced as agent402's.

use crate::{Face, Method, Route, Tier, When};

const fn route(
    id: &'static str,
    method: Method,
    path: &'static str,
    face: Face,
    price: u64,
    summary: &'static str,
) -> Route {
    Route {
        id,
        method,
        path,
        face,
        when: When::Always,
        price,
        summary,
        tier: Tier::Wallet,
        tool: None,
        long_poll: false,
    }
}

const fn when(route: Route, when: When) -> Route {
    Route { when, ..route }
}

const fn long_poll(route: Route) -> Route {
    Route {
        long_poll: true,
        ..route
    }
}

use Face::{Agent402, Agents, Grpc, TwoS};
use Method::{Delete, Get, Post, Put};

pub static ROUTES: &[Route] = &[
    // agent402
    route(
        "memory.set",
        Post,
        "/api/memory",
        Agent402,
        2000,
        "set (or delete) one key",
    ),
    when(
        route(
            "memory.get",
            Get,
            "/api/memory",
            Agent402,
            1000,
            "read one key",
        ),
        When::QueryHas("key"),
    ),
    when(
        route(
            "memory.list",
            Get,
            "/api/memory",
            Agent402,
            1000,
            "list keys",
        ),
        When::QueryLacks("key"),
    ),
    route(
        "memory.cas",
        Post,
        "/api/memory/cas",
        Agent402,
        1000,
        "compare and swap one key",
    ),
    route(
        "memory.incr",
        Post,
        "/api/memory/incr",
        Agent402,
        1000,
        "increment a counter",
    ),
    route(
        "memory.grant",
        Post,
        "/api/memory/grant",
        Agent402,
        2000,
        "grant another namespace access",
    ),
    route(
        "memory.revoke",
        Post,
        "/api/memory/revoke",
        Agent402,
        1000,
        "revoke a grant",
    ),
    route(
        "memory.grants",
        Get,
        "/api/memory/grants",
        Agent402,
        1000,
        "list the grants given",
    ),
    long_poll(route(
        "memory.watch",
        Get,
        "/api/memory/watch",
        Agent402,
        1000,
        "wait for a change to a key or prefix (long poll)",
    )),
    // 2s.io
    route(
        "agent.memory.put",
        Post,
        "/api/agent/memory/put",
        TwoS,
        2000,
        "put one key",
    ),
    route(
        "agent.memory.get",
        Get,
        "/api/agent/memory/get",
        TwoS,
        1200,
        "read one key",
    ),
    route(
        "agent.memory.list",
        Get,
        "/api/agent/memory/list",
        TwoS,
        1000,
        "list keys",
    ),
    route(
        "agent.memory.delete",
        Post,
        "/api/agent/memory/delete",
        TwoS,
        1000,
        "delete one key",
    ),
    // per-agent
    route(
        "agents.memory.list",
        Get,
        "/agents/{id}/memory",
        Agents,
        1000,
        "list every key and value",
    ),
    route(
        "agents.memory.get",
        Get,
        "/agents/{id}/memory/{*key}",
        Agents,
        1000,
        "read one key",
    ),
    route(
        "agents.memory.put",
        Put,
        "/agents/{id}/memory/{*key}",
        Agents,
        2000,
        "write one key",
    ),
    route(
        "agents.memory.delete",
        Delete,
        "/agents/{id}/memory/{*key}",
        Agents,
        1000,
        "delete one key",
    ),
    // gRPC: POST /<service>/<method>, priced as the agent402 operation.
    route(
        "grpc.memory.get",
        Post,
        "/tessera.memory.v1.MemoryService/Get",
        Grpc,
        1000,
        "read one key",
    ),
    route(
        "grpc.memory.set",
        Post,
        "/tessera.memory.v1.MemoryService/Set",
        Grpc,
        2000,
        "set one key",
    ),
    route(
        "grpc.memory.delete",
        Post,
        "/tessera.memory.v1.MemoryService/Delete",
        Grpc,
        1000,
        "delete one key",
    ),
    route(
        "grpc.memory.list",
        Post,
        "/tessera.memory.v1.MemoryService/List",
        Grpc,
        1000,
        "list keys",
    ),
    route(
        "grpc.memory.cas",
        Post,
        "/tessera.memory.v1.MemoryService/CompareAndSwap",
        Grpc,
        1000,
        "compare and swap one key",
    ),
    route(
        "grpc.memory.incr",
        Post,
        "/tessera.memory.v1.MemoryService/Increment",
        Grpc,
        1000,
        "increment a counter",
    ),
    route(
        "grpc.memory.grant",
        Post,
        "/tessera.memory.v1.MemoryService/Grant",
        Grpc,
        2000,
        "grant another namespace access",
    ),
    route(
        "grpc.memory.revoke",
        Post,
        "/tessera.memory.v1.MemoryService/Revoke",
        Grpc,
        1000,
        "revoke a grant",
    ),
    route(
        "grpc.memory.watch",
        Post,
        "/tessera.memory.v1.MemoryService/Watch",
        Grpc,
        1000,
        "watch a key or prefix for up to a minute",
    ),
    route(
        "grpc.memory.grants",
        Post,
        "/tessera.memory.v1.MemoryService/ListGrants",
        Grpc,
        1000,
        "list the grants given",
    ),
];
