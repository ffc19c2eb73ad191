//! Who the client calls as.

use crate::x402::Payer;

/// The namespace a call acts as. With payments off (FREE_MODE) the server
/// takes the `x-agent-id` metadata at its word; with payments on, the
/// payer's wallet is the namespace and every call is paid.
#[derive(Debug, Clone)]
pub enum Identity {
    Agent(String),
    Payer(Payer),
}

impl Identity {
    pub fn agent(id: impl Into<String>) -> Self {
        Identity::Agent(id.into())
    }

    /// The caller's own namespace as the server names it: the agent id, or
    /// the payer's lower-case address.
    pub fn namespace(&self) -> String {
        match self {
            Identity::Agent(id) => id.clone(),
            Identity::Payer(payer) => payer.namespace(),
        }
    }
}
