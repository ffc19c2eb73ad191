//! The authorizations being settled now: a second settle of one of them is
//! refused instead of sending a transaction that could only revert. The
//! claim lives as long as its authorization's settlement, into the batch
//! that carries it.

use std::sync::{Arc, Mutex};
use tessera_x402::AuthorizationKey;

use crate::verify::Verified;

/// The authorizations being settled now, as (chain, token, from, nonce).
pub(crate) type InFlightSet = Arc<Mutex<std::collections::HashSet<AuthorizationKey>>>;

/// Marks an authorization as being settled for as long as it lives (it
/// moves into the batch with the authorization).
#[derive(Debug)]
pub(crate) struct InFlight {
    set: InFlightSet,
    key: AuthorizationKey,
}

impl InFlight {
    pub(crate) fn claim(set: &InFlightSet, verified: &Verified) -> Option<Self> {
        let key = AuthorizationKey {
            chain_id: verified.network.chain_id,
            asset: verified.token,
            from: verified.authorization.from,
            nonce: verified.authorization.nonce,
        };
        let mut in_flight = set.lock().expect("not poisoned");
        // Lazily: an `InFlight` built for a refused claim would, when
        // dropped, remove the holder's key (and lock the held mutex).
        in_flight.insert(key).then(|| InFlight {
            set: set.clone(),
            key,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.set.lock() {
            in_flight.remove(&self.key);
        }
    }
}
