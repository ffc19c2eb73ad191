//! The authorizations being settled now. A second settle of one of them
//! (a retry whose first attempt is still waiting for its batch, say) does
//! not send a transaction that could only revert: it follows the first and
//! answers its outcome. The claim lives as long as its authorization's
//! settlement, into the batch that carries it.

use alloy::primitives::B256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tessera_x402::{reason, AuthorizationKey};
use tokio::sync::watch;

use crate::send::Failure;
use crate::verify::Verified;

/// How a settlement ended: its transaction, or why not.
pub(crate) type Outcome = Result<B256, Failure>;

/// The authorizations being settled now, as (chain, token, from, nonce),
/// each with where its outcome will be published.
pub(crate) type InFlightSet =
    Arc<Mutex<HashMap<AuthorizationKey, watch::Receiver<Option<Outcome>>>>>;

/// What a settle gets for its authorization.
pub(crate) enum Claim {
    /// Nobody else is settling it: settle it, then [`InFlight::finish`].
    Held(InFlight),
    /// Another request is settling it: wait for that outcome.
    Followed(Follower),
}

/// Marks an authorization as being settled for as long as it lives (it
/// moves into the batch with the authorization).
#[derive(Debug)]
pub(crate) struct InFlight {
    set: InFlightSet,
    key: AuthorizationKey,
    outcome: watch::Sender<Option<Outcome>>,
}

impl InFlight {
    pub(crate) fn claim(set: &InFlightSet, verified: &Verified) -> Claim {
        let key = AuthorizationKey {
            chain_id: verified.network.chain_id,
            asset: verified.token,
            from: verified.authorization.from,
            nonce: verified.authorization.nonce,
        };
        let mut in_flight = set.lock().expect("not poisoned");
        if let Some(outcome) = in_flight.get(&key) {
            return Claim::Followed(Follower {
                outcome: outcome.clone(),
            });
        }
        let (outcome, follow) = watch::channel(None);
        in_flight.insert(key, follow);
        Claim::Held(InFlight {
            set: set.clone(),
            key,
            outcome,
        })
    }

    /// Publishes the outcome to the requests following this one and
    /// releases the authorization.
    pub(crate) fn finish(self, outcome: &Outcome) {
        self.outcome.send_replace(Some(outcome.clone()));
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.set.lock() {
            in_flight.remove(&self.key);
        }
        // Dropped without an outcome (the batch task panicked): followers
        // are told to try again, which reconciles with the chain.
        self.outcome.send_if_modified(|outcome| {
            outcome
                .is_none()
                .then(|| {
                    *outcome = Some(Err(Failure::new(
                        reason::UNEXPECTED_SETTLE_ERROR,
                        "the settlement of this authorization stopped: settle again later",
                    )))
                })
                .is_some()
        });
    }
}

/// A settle of an authorization another request is settling.
pub(crate) struct Follower {
    outcome: watch::Receiver<Option<Outcome>>,
}

impl Follower {
    /// The outcome of the settlement being followed.
    pub(crate) async fn outcome(mut self) -> Outcome {
        match self.outcome.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().expect("waited for an outcome"),
            Err(_) => Err(Failure::new(
                reason::UNEXPECTED_SETTLE_ERROR,
                "the settlement of this authorization stopped: settle again later",
            )),
        }
    }
}
