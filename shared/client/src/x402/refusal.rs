//! Why the client did not pay, or paid and was refused.

use alloy::primitives::{Address, U256};
use tessera_x402::{Network, PaymentRequired};

/// A payment the layer would not make, or made and saw refused. It travels
/// to the caller as the `source` of the call's `tonic::Status` (whose code,
/// details and metadata stay the server's), and [`crate::Client`] returns it
/// as [`crate::Error::Payment`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PaymentError {
    /// The `payment-required` metadata is not a readable x402 v2 quote.
    #[error("the server's payment-required quote is unreadable: {0}")]
    UnreadableQuote(String),
    /// No offer is in a token this payer allows (scheme `exact`, an
    /// `eip155:` network, the asset, the token's EIP-712 name and version).
    #[error("none of the {} offers is in a token this payer allows", .quote.accepts.len())]
    NoPayableOffer { quote: Box<PaymentRequired> },
    /// The cheapest payable offer costs more than the payer's cap: nothing
    /// was signed.
    #[error("the price {price} is above the cap {cap} for {asset} on {network}: not paid")]
    OverCap {
        price: U256,
        cap: U256,
        network: Network,
        asset: Address,
    },
    #[error("signing the authorization failed: {0}")]
    Signing(String),
    /// The server answered the paid call with `PAYMENT_REQUIRED` again.
    /// `reason` is the x402 reason code it gave (the quote's `error`, e.g.
    /// `insufficient_funds`). The call is not sent a third time.
    #[error("the server refused the payment: {}", .reason.as_deref().unwrap_or("no reason given"))]
    Refused {
        reason: Option<String>,
        quote: Box<PaymentRequired>,
    },
}
