//! Redis key names of one memory key. All keys of a namespace share the hash
//! tag `{ns}`, so a script touching entry, usage and expiry index stays in one
//! cluster slot. Namespaces cannot contain braces (see `validate_namespace`).

pub struct Slot {
    pub entry: String,
    pub usage: String,
    pub expiry: String,
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
            member: key.to_string(),
            prefix,
        }
    }
}
