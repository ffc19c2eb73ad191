//! Redis key names of one memory key. All keys of a namespace share the hash
//! tag `{ns}`, so a script touching entry, usage and expiry index stays in one
//! cluster slot. Namespaces cannot contain braces (see `validate_namespace`).

pub struct Slot {
    pub entry: String,
    pub usage: String,
    pub expiry: String,
    /// The namespace's change stream (see `changes.rs`).
    pub changes: String,
    pub member: String,
    pub prefix: String,
}

impl Slot {
    pub fn new(namespace: &str, key: &str) -> Self {
        let prefix = format!("tm:{{{namespace}}}:e:");
        Slot {
            entry: format!("{prefix}{key}"),
            usage: format!("tm:{{{namespace}}}:u"),
            expiry: format!("tm:{{{namespace}}}:x"),
            changes: format!("tm:{{{namespace}}}:w"),
            member: key.to_string(),
            prefix,
        }
    }
}

/// The namespace of a change stream's key (`tm:{ns}:w`).
pub fn namespace_of_changes(stream: &str) -> Option<&str> {
    stream.strip_prefix("tm:{")?.strip_suffix("}:w")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_stream_names_its_namespace() {
        let slot = Slot::new("0xabc", "k");
        assert_eq!(namespace_of_changes(&slot.changes), Some("0xabc"));
        assert_eq!(namespace_of_changes("tm:{a}:x"), None);
    }
}
