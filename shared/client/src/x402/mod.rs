//! x402 over gRPC, from the paying side: a [`Payer`] says which tokens it
//! pays with and at most how much per call, [`X402Layer`] answers a
//! `PAYMENT_REQUIRED` status by signing one EIP-3009 authorization and
//! sending the call again, and [`Settlement`] reads the `payment-response`
//! a served call carries.

mod layer;
mod payer;
mod refusal;
mod settlement;
mod sign;

pub(crate) use layer::status;
pub use layer::{X402Layer, X402Service};
pub use payer::{Allowance, Payer};
pub use refusal::PaymentError;
pub use settlement::{Settlement, SettlementError, PAYMENT_RESPONSE};
