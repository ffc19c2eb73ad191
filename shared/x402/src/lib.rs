//! The x402 wire protocol as the coinbase/x402 specification and its
//! reference packages speak it: v2 (`PAYMENT-REQUIRED` / `PAYMENT-SIGNATURE`
//! / `PAYMENT-RESPONSE`, CAIP-2 networks) and v1 (`X-PAYMENT` /
//! `X-PAYMENT-RESPONSE`, network names). Internally every requirement is
//! normalized to the v2 shape ([`Requirements`]), and an exact-scheme EVM
//! payment is parsed once into typed values ([`ExactPayment`]) that both the
//! resource server and the facilitator judge with one check.

pub mod codec;
pub mod eip3009;
pub mod exact;
pub mod facilitator;
pub mod network;
pub mod payment;
pub mod reason;

pub use codec::{decode_header, encode_header, HeaderError, MAX_HEADER_BYTES};
pub use exact::{AuthorizationKey, ExactAuthorization, ExactPayment, ExactRequirements, Refusal};
pub use network::Network;
pub use payment::{
    Authorization, ExactEvmPayload, PaymentPayload, PaymentRequired, Requirements, RequirementsV1,
    ResourceInfo,
};

/// Header names, as the HTTP transport specs spell them.
pub mod headers {
    pub const PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
    pub const PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
    pub const PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";
    pub const X_PAYMENT: &str = "X-PAYMENT";
    pub const X_PAYMENT_RESPONSE: &str = "X-PAYMENT-RESPONSE";
}
