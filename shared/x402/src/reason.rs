//! Reason strings: the error-code registry of the x402 v2 specification (§9).
//! Conformance checkers accept only these, and clients switch on them, so we
//! emit nothing else. Where `@x402/evm` has a finer spelling of its own, the
//! comment names it and the registry code we answer instead.

pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
pub const VALID_AFTER: &str = "invalid_exact_evm_payload_authorization_valid_after";
pub const VALID_BEFORE: &str = "invalid_exact_evm_payload_authorization_valid_before";
pub const VALUE_MISMATCH: &str = "invalid_exact_evm_payload_authorization_value_mismatch";
/// `@x402/evm`: `invalid_exact_evm_signature`.
pub const SIGNATURE: &str = "invalid_exact_evm_payload_signature";
/// `@x402/evm`: `invalid_exact_evm_recipient_mismatch`.
pub const RECIPIENT_MISMATCH: &str = "invalid_exact_evm_payload_recipient_mismatch";
pub const INVALID_NETWORK: &str = "invalid_network";
pub const INVALID_PAYLOAD: &str = "invalid_payload";
/// The payload accepted other requirements than the route's (asset, amount,
/// payTo, timeout), or the requirements themselves are malformed.
pub const INVALID_PAYMENT_REQUIREMENTS: &str = "invalid_payment_requirements";
pub const INVALID_SCHEME: &str = "invalid_scheme";
pub const UNSUPPORTED_SCHEME: &str = "unsupported_scheme";
pub const INVALID_X402_VERSION: &str = "invalid_x402_version";
/// A used or cancelled EIP-3009 nonce, or a transfer that reverts.
/// `@x402/evm`: `invalid_exact_evm_nonce_already_used`.
pub const INVALID_TRANSACTION_STATE: &str = "invalid_transaction_state";
pub const UNEXPECTED_VERIFY_ERROR: &str = "unexpected_verify_error";
pub const UNEXPECTED_SETTLE_ERROR: &str = "unexpected_settle_error";

/// Every code above.
pub const REGISTRY: [&str; 15] = [
    INSUFFICIENT_FUNDS,
    VALID_AFTER,
    VALID_BEFORE,
    VALUE_MISMATCH,
    SIGNATURE,
    RECIPIENT_MISMATCH,
    INVALID_NETWORK,
    INVALID_PAYLOAD,
    INVALID_PAYMENT_REQUIREMENTS,
    INVALID_SCHEME,
    UNSUPPORTED_SCHEME,
    INVALID_X402_VERSION,
    INVALID_TRANSACTION_STATE,
    UNEXPECTED_VERIFY_ERROR,
    UNEXPECTED_SETTLE_ERROR,
];

/// Not in the registry: the non-terminal settle outcome of the reference
/// packages (the transaction is sent, its receipt not yet seen).
pub const SETTLEMENT_PENDING: &str = "settlement_pending";
