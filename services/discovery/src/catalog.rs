//! Our own catalog as the service answers it: the entries, the same as
//! proto `Tool`s, and the find index over them (a hit's `doc` is a
//! position in all three). Immutable once built: `Find` and `Pricing` read
//! it without a lock.

use crate::entries::{entries, Entry};
use crate::index::Index;
use std::sync::{Arc, LazyLock};
use tessera_proto::discovery::v1 as pb;

/// Our own catalog's seller: empty (a crawled seller is its origin).
pub const OWN_SELLER: &str = "";

/// `entry` as the proto `Tool`: the price as a decimal string of atomic
/// units, the input schema and example as JSON text (empty when it has
/// none).
pub fn proto_tool(entry: &Entry) -> pb::Tool {
    pb::Tool {
        slug: entry.slug.clone(),
        name: entry.name.clone(),
        description: entry.description.clone(),
        price: entry.price.to_string(),
        method: entry.method.to_string(),
        route: entry.route.to_string(),
        input_schema_json: json_text(&entry.input_schema),
        seller: OWN_SELLER.to_string(),
        category: entry.category.clone(),
        tags: entry.tags.clone(),
        example_json: json_text(&entry.example),
        call: entry.call.clone(),
    }
}

/// `value` as JSON text; empty for null (none).
fn json_text(value: &serde_json::Value) -> String {
    if value.is_null() {
        String::new()
    } else {
        value.to_string()
    }
}

/// A catalog of entries with their tools and index.
#[derive(Debug)]
pub struct Catalog {
    pub entries: Vec<Entry>,
    pub tools: Vec<pb::Tool>,
    pub index: Arc<Index>,
}

impl Catalog {
    /// The catalog of `entries`, indexed.
    pub fn new(entries: Vec<Entry>) -> Catalog {
        let index = Arc::new(Index::new(entries.iter().map(Entry::document).collect()));
        Catalog {
            tools: entries.iter().map(proto_tool).collect(),
            entries,
            index,
        }
    }

    /// The catalog of [`entries`], built once.
    pub fn ours() -> Arc<Catalog> {
        static OURS: LazyLock<Arc<Catalog>> =
            LazyLock::new(|| Arc::new(Catalog::new(entries().to_vec())));
        OURS.clone()
    }
}
