//! The keys a limiter counts against.

use tessera_error::Error;

/// Longest key accepted, in bytes. Longer keys are refused rather than
/// hashed: a short hash could make two callers (say, two wallets) share a
/// cell, and no real key (an IP, a 0x address) comes near this.
pub const MAX_KEY_BYTES: usize = 128;

pub(crate) fn check_key(key: &str) -> Result<(), Error> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(
            "RATE_LIMIT_KEY_TOO_LONG",
            format!(
                "a rate-limit key is at most {MAX_KEY_BYTES} bytes; this one has {}",
                key.len()
            ),
        ));
    }
    Ok(())
}
