//! The toolbox's tools as catalog routes: `tools.<slug>`, on the agent402
//! face, at the path and with the method and price each tool declares,
//! payable with proof of work.

use crate::{Face, Method, Route, Tier, When};

/// One route per tool, in the toolbox's order.
pub fn routes() -> impl Iterator<Item = Route> {
    tessera_toolbox::all().map(|tool| Route {
        // Built once, for the process's life (the catalog is a static).
        id: Box::leak(format!("tools.{}", tool.slug).into_boxed_str()),
        method: match tool.method {
            tessera_toolbox::Method::Get => Method::Get,
            tessera_toolbox::Method::Post => Method::Post,
        },
        path: tool.path,
        face: Face::Agent402,
        when: When::Always,
        price: tool.price,
        summary: tool.description,
        tier: Tier::Cpu,
        tool: Some(tool.slug),
        long_poll: false,
    })
}
