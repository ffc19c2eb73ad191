//! Encodings: Base64, Base32 and hex (RFC 4648), and URL percent-encoding.

use crate::{tool, Encoding, Tool, ToolError, MAX_TEXT};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub static TOOLS: &[Tool] = &[
    tool! {
        slug: "base64-encode", name: "Base64 encode", category: "encoding",
        tags: ["base64", "base64url", "rfc4648", "encode"],
        method: Post, path: "/api/base64-encode",
        description: "Base64 (RFC 4648) of a text or bytes, in the standard or URL-safe alphabet, padded or not.",
        run: base64_encode, example: { "text": "hello world" },
        cost: Light,
    },
    tool! {
        slug: "base64-decode", name: "Base64 decode", category: "encoding",
        tags: ["base64", "base64url", "rfc4648", "decode"],
        method: Post, path: "/api/base64-decode",
        description: "Decodes Base64 (standard or URL-safe alphabet, padding optional unless you require it; whitespace ignored): the text if the bytes are UTF-8, and the bytes in hex.",
        run: base64_decode, example: { "text": "aGVsbG8gd29ybGQ=" },
        cost: Light,
    },
    tool! {
        slug: "base32-encode", name: "Base32 encode", category: "encoding",
        tags: ["base32", "base32hex", "rfc4648", "encode"],
        method: Post, path: "/api/base32-encode",
        description: "Base32 (RFC 4648) of a text or bytes, in the standard or extended-hex alphabet, padded or not.",
        run: base32_encode, example: { "text": "foobar" },
        cost: Light,
    },
    tool! {
        slug: "base32-decode", name: "Base32 decode", category: "encoding",
        tags: ["base32", "base32hex", "rfc4648", "decode", "totp"],
        method: Post, path: "/api/base32-decode",
        description: "Decodes Base32 (RFC 4648, either case, whitespace ignored, padding optional unless you require it): the text if the bytes are UTF-8, and the bytes in hex.",
        run: base32_decode, example: { "text": "MZXW6YTBOI======" },
        cost: Light,
    },
    tool! {
        slug: "hex-encode", name: "Hex encode", category: "encoding",
        tags: ["hex", "base16", "rfc4648", "encode"],
        method: Post, path: "/api/hex-encode",
        description: "Hexadecimal (Base16) of a text or bytes, lower or upper case.",
        run: hex_encode, example: { "text": "hello" },
        cost: Light,
    },
    tool! {
        slug: "hex-decode", name: "Hex decode", category: "encoding",
        tags: ["hex", "base16", "rfc4648", "decode"],
        method: Post, path: "/api/hex-decode",
        description: "Decodes hexadecimal (either case, with or without 0x, whitespace ignored): the text if the bytes are UTF-8, and the bytes in hex.",
        run: hex_decode, example: { "text": "0x68656c6c6f" },
        cost: Light,
    },
    tool! {
        slug: "url-encode", name: "URL encode", category: "encoding",
        tags: ["url", "percent-encoding", "uri", "encodeuricomponent", "encode"],
        method: Post, path: "/api/url-encode",
        description: "Percent-encodes a text or bytes as a URL component: like JavaScript's encodeURIComponent, or leaving only RFC 3986 unreserved characters.",
        run: url_encode, example: { "text": "a b&c=d/é" },
        cost: Light,
    },
    tool! {
        slug: "url-decode", name: "URL decode", category: "encoding",
        tags: ["url", "percent-encoding", "uri", "decodeuricomponent", "decode"],
        method: Post, path: "/api/url-decode",
        description: "Decodes percent-encoding (a malformed %-sequence is kept as written; `+` as a space if asked): the text if the bytes are UTF-8, and the bytes in hex.",
        run: url_decode, example: { "text": "a%20b%26c%3Dd%2F%C3%A9" },
        cost: Light,
    },
];

/// An encoding's result.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Encoded {
    pub encoded: String,
}

/// Decoded bytes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decoded {
    /// The bytes as text, if they are UTF-8 (otherwise null).
    pub text: Option<String>,
    /// The bytes in lower-case hex.
    pub hex: String,
    /// How many bytes.
    pub length: usize,
}

impl Decoded {
    fn of(bytes: Vec<u8>) -> Decoded {
        Decoded {
            hex: hex::encode(&bytes),
            length: bytes.len(),
            text: String::from_utf8(bytes).ok(),
        }
    }
}

/// `text` without its ASCII whitespace (line breaks, spaces between groups).
fn without_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_ascii_whitespace()).collect()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Base64EncodeInput {
    /// The input.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// How `text` is written (default `utf8`).
    #[serde(default)]
    pub encoding: Encoding,
    /// Use the URL-safe alphabet (`-` and `_` for `+` and `/`); default false.
    #[serde(default)]
    pub url_safe: bool,
    /// Pad with `=` to a multiple of 4 characters; default true.
    #[serde(default = "yes")]
    pub padding: bool,
}

fn base64_encode(input: Base64EncodeInput) -> Result<Encoded, ToolError> {
    let bytes = input.encoding.decode("text", &input.text)?;
    let alphabet = if input.url_safe {
        &alphabet::URL_SAFE
    } else {
        &alphabet::STANDARD
    };
    let config = GeneralPurposeConfig::new().with_encode_padding(input.padding);
    Ok(Encoded {
        encoded: GeneralPurpose::new(alphabet, config).encode(bytes),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Base64DecodeInput {
    /// The Base64 text; whitespace in it is ignored.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// true: only the URL-safe alphabet (`-`, `_`); false: only the standard
    /// one (`+`, `/`); absent: whichever the text uses.
    #[serde(default)]
    pub url_safe: Option<bool>,
    /// true: `=` padding required; false: padding refused; absent: either.
    #[serde(default)]
    pub padding: Option<bool>,
}

fn base64_decode(input: Base64DecodeInput) -> Result<Decoded, ToolError> {
    let text = without_whitespace(&input.text);
    let url_safe = input.url_safe.unwrap_or_else(|| text.contains(['-', '_']));
    let alphabet = if url_safe {
        &alphabet::URL_SAFE
    } else {
        &alphabet::STANDARD
    };
    let padding = match input.padding {
        None => DecodePaddingMode::Indifferent,
        Some(true) => DecodePaddingMode::RequireCanonical,
        Some(false) => DecodePaddingMode::RequireNone,
    };
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(padding);
    let bytes = GeneralPurpose::new(alphabet, config)
        .decode(text)
        .map_err(|error| ToolError::field("text", error))?;
    Ok(Decoded::of(bytes))
}

/// The Base32 encoding for an alphabet and padding.
fn base32_of(hex_alphabet: bool, padding: bool) -> data_encoding::Encoding {
    match (hex_alphabet, padding) {
        (false, true) => data_encoding::BASE32,
        (false, false) => data_encoding::BASE32_NOPAD,
        (true, true) => data_encoding::BASE32HEX,
        (true, false) => data_encoding::BASE32HEX_NOPAD,
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Base32EncodeInput {
    /// The input.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// How `text` is written (default `utf8`).
    #[serde(default)]
    pub encoding: Encoding,
    /// Use the "extended hex" alphabet (`0-9A-V`, RFC 4648 section 7)
    /// instead of the standard one (`A-Z2-7`); default false.
    #[serde(default)]
    pub hex_alphabet: bool,
    /// Pad with `=` to a multiple of 8 characters; default true.
    #[serde(default = "yes")]
    pub padding: bool,
}

fn base32_encode(input: Base32EncodeInput) -> Result<Encoded, ToolError> {
    let bytes = input.encoding.decode("text", &input.text)?;
    Ok(Encoded {
        encoded: base32_of(input.hex_alphabet, input.padding).encode(&bytes),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Base32DecodeInput {
    /// The Base32 text, either case; whitespace in it is ignored.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// The text is in the "extended hex" alphabet (`0-9A-V`); default false.
    #[serde(default)]
    pub hex_alphabet: bool,
    /// true: `=` padding required; false: padding refused; absent: either.
    #[serde(default)]
    pub padding: Option<bool>,
}

fn base32_decode(input: Base32DecodeInput) -> Result<Decoded, ToolError> {
    let text = without_whitespace(&input.text).to_ascii_uppercase();
    let padded = input.padding.unwrap_or_else(|| text.contains('='));
    let bytes = base32_of(input.hex_alphabet, padded)
        .decode(text.as_bytes())
        .map_err(|error| ToolError::field("text", error))?;
    Ok(Decoded::of(bytes))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HexEncodeInput {
    /// The input.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// How `text` is written (default `utf8`).
    #[serde(default)]
    pub encoding: Encoding,
    /// Upper-case digits `A-F`; default false (lower case).
    #[serde(default)]
    pub uppercase: bool,
}

fn hex_encode(input: HexEncodeInput) -> Result<Encoded, ToolError> {
    let bytes = input.encoding.decode("text", &input.text)?;
    let encoded = if input.uppercase {
        hex::encode_upper(bytes)
    } else {
        hex::encode(bytes)
    };
    Ok(Encoded { encoded })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HexDecodeInput {
    /// The hex digits, either case, with or without `0x`; whitespace in them
    /// is ignored.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
}

fn hex_decode(input: HexDecodeInput) -> Result<Decoded, ToolError> {
    let text = without_whitespace(&input.text);
    Ok(Decoded::of(Encoding::Hex.decode("text", &text)?))
}

/// Which characters percent-encoding leaves as they are.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UrlSet {
    /// Letters, digits and `-_.!~*'()`, as JavaScript's `encodeURIComponent`
    /// and the WHATWG URL component percent-encode set.
    #[default]
    Component,
    /// Only RFC 3986's unreserved characters: letters, digits and `-._~`.
    Unreserved,
}

/// Everything but letters, digits and `-_.!~*'()`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Everything but letters, digits and `-._~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UrlEncodeInput {
    /// The input.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// How `text` is written (default `utf8`).
    #[serde(default)]
    pub encoding: Encoding,
    /// Which characters stay unencoded (default `component`).
    #[serde(default)]
    pub set: UrlSet,
}

fn url_encode(input: UrlEncodeInput) -> Result<Encoded, ToolError> {
    let bytes = input.encoding.decode("text", &input.text)?;
    let set = match input.set {
        UrlSet::Component => COMPONENT,
        UrlSet::Unreserved => UNRESERVED,
    };
    Ok(Encoded {
        encoded: percent_encoding::percent_encode(&bytes, set).to_string(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UrlDecodeInput {
    /// The percent-encoded text.
    #[schemars(length(max = MAX_TEXT))]
    pub text: String,
    /// Decode `+` as a space, as in form data
    /// (`application/x-www-form-urlencoded`); default false.
    #[serde(default)]
    pub plus_as_space: bool,
}

fn url_decode(input: UrlDecodeInput) -> Result<Decoded, ToolError> {
    let text = if input.plus_as_space {
        input.text.replace('+', " ")
    } else {
        input.text
    };
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&text).collect();
    Ok(Decoded::of(bytes))
}

#[cfg(test)]
mod tests {
    use crate::testing::{field_of_error, run};
    use serde_json::{json, Value};

    fn encoded(slug: &str, input: Value) -> String {
        run(slug, input)["encoded"].as_str().unwrap().to_string()
    }

    /// RFC 4648 section 10: the inputs, and their BASE64, BASE32,
    /// BASE32-HEX and BASE16 encodings.
    const RFC4648: &[(&str, &str, &str, &str, &str)] = &[
        ("", "", "", "", ""),
        ("f", "Zg==", "MY======", "CO======", "66"),
        ("fo", "Zm8=", "MZXQ====", "CPNG====", "666F"),
        ("foo", "Zm9v", "MZXW6===", "CPNMU===", "666F6F"),
        ("foob", "Zm9vYg==", "MZXW6YQ=", "CPNMUOG=", "666F6F62"),
        ("fooba", "Zm9vYmE=", "MZXW6YTB", "CPNMUOJ1", "666F6F6261"),
        (
            "foobar",
            "Zm9vYmFy",
            "MZXW6YTBOI======",
            "CPNMUOJ1E8======",
            "666F6F626172",
        ),
    ];

    fn decoded_text(slug: &str, input: Value) -> String {
        run(slug, input)["text"].as_str().unwrap().to_string()
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, b64, ..) in RFC4648 {
            assert_eq!(encoded("base64-encode", json!({ "text": plain })), *b64);
            assert_eq!(
                decoded_text("base64-decode", json!({ "text": b64 })),
                *plain
            );
            let unpadded = b64.trim_end_matches('=');
            let input = json!({ "text": plain, "padding": false });
            assert_eq!(encoded("base64-encode", input), unpadded);
            assert_eq!(
                decoded_text("base64-decode", json!({ "text": unpadded })),
                *plain
            );
        }
    }

    #[test]
    fn base64_alphabets_and_padding() {
        // 0xfb 0xff: `+/8=` in the standard alphabet, `-_8=` URL-safe.
        let bytes = json!({ "text": "fbff", "encoding": "hex" });
        assert_eq!(encoded("base64-encode", bytes.clone()), "+/8=");
        let mut url = bytes;
        url["urlSafe"] = json!(true);
        url["padding"] = json!(false);
        assert_eq!(encoded("base64-encode", url), "-_8");
        let decoded = run("base64-decode", json!({ "text": "-_8" }));
        assert_eq!(decoded, json!({ "text": null, "hex": "fbff", "length": 2 }));
        let decoded = run("base64-decode", json!({ "text": "aGVs\nbG8g d29y\nbGQ=" }));
        assert_eq!(
            decoded,
            json!({ "text": "hello world", "hex": "68656c6c6f20776f726c64", "length": 11 })
        );
        // Each refusal names the field.
        let strict = json!({ "text": "Zg", "padding": true });
        assert_eq!(
            field_of_error("base64-decode", strict).as_deref(),
            Some("text")
        );
        let bare = json!({ "text": "Zg==", "padding": false });
        assert_eq!(
            field_of_error("base64-decode", bare).as_deref(),
            Some("text")
        );
        let wrong = json!({ "text": "-_8", "urlSafe": false });
        assert_eq!(
            field_of_error("base64-decode", wrong).as_deref(),
            Some("text")
        );
        let junk = json!({ "text": "Zm9v!" });
        assert_eq!(
            field_of_error("base64-decode", junk).as_deref(),
            Some("text")
        );
        let bad = json!({ "text": "zz", "encoding": "hex" });
        assert_eq!(
            field_of_error("base64-encode", bad).as_deref(),
            Some("text")
        );
        let flag = json!({ "text": "a", "urlSafe": "yes" });
        assert_eq!(
            field_of_error("base64-encode", flag).as_deref(),
            Some("urlSafe")
        );
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (plain, _, b32, b32hex, _) in RFC4648 {
            assert_eq!(encoded("base32-encode", json!({ "text": plain })), *b32);
            let hex = json!({ "text": plain, "hexAlphabet": true });
            assert_eq!(encoded("base32-encode", hex), *b32hex);
            assert_eq!(
                decoded_text("base32-decode", json!({ "text": b32 })),
                *plain
            );
            let hex = json!({ "text": b32hex, "hexAlphabet": true });
            assert_eq!(decoded_text("base32-decode", hex), *plain);
            // Unpadded, lower case.
            let bare = b32.trim_end_matches('=').to_lowercase();
            let input = json!({ "text": plain, "padding": false });
            assert_eq!(encoded("base32-encode", input).to_lowercase(), bare);
            assert_eq!(
                decoded_text("base32-decode", json!({ "text": bare })),
                *plain
            );
        }
        // Grouped with spaces, as TOTP secrets are shown.
        let grouped = json!({ "text": "mzxw 6ytb oi" });
        assert_eq!(decoded_text("base32-decode", grouped), "foobar");
        let strict = json!({ "text": "MZXW6YTBOI", "padding": true });
        assert_eq!(
            field_of_error("base32-decode", strict).as_deref(),
            Some("text")
        );
        let junk = json!({ "text": "MZXW1===" });
        assert_eq!(
            field_of_error("base32-decode", junk).as_deref(),
            Some("text")
        );
        let bad = json!({ "text": "Zm9v!", "encoding": "base64" });
        assert_eq!(
            field_of_error("base32-encode", bad).as_deref(),
            Some("text")
        );
    }

    #[test]
    fn hex_matches_rfc_4648() {
        for (plain, .., b16) in RFC4648 {
            let upper = json!({ "text": plain, "uppercase": true });
            assert_eq!(encoded("hex-encode", upper), *b16);
            assert_eq!(
                encoded("hex-encode", json!({ "text": plain })),
                b16.to_lowercase()
            );
            assert_eq!(decoded_text("hex-decode", json!({ "text": b16 })), *plain);
            let prefixed = format!("0x{}", b16.to_lowercase());
            assert_eq!(
                decoded_text("hex-decode", json!({ "text": prefixed })),
                *plain
            );
        }
        let spaced = run("hex-decode", json!({ "text": "0XDE AD be ef" }));
        assert_eq!(
            spaced,
            json!({ "text": null, "hex": "deadbeef", "length": 4 })
        );
        for bad in ["abc", "0xzz", "0x0x00"] {
            let input = json!({ "text": bad });
            assert_eq!(field_of_error("hex-decode", input).as_deref(), Some("text"));
        }
        let bad = json!({ "text": "a", "encoding": "ascii" });
        assert_eq!(
            field_of_error("hex-encode", bad).as_deref(),
            Some("encoding")
        );
    }

    #[test]
    fn url_encoding_matches_encode_uri_component() {
        // MDN's encodeURIComponent examples: reserved characters, unreserved
        // marks, alphanumerics and space, and a non-ASCII text.
        let component = |text: &str| encoded("url-encode", json!({ "text": text }));
        assert_eq!(
            component(";,/?:@&=+$#"),
            "%3B%2C%2F%3F%3A%40%26%3D%2B%24%23"
        );
        assert_eq!(component("-.!~*'()"), "-.!~*'()");
        assert_eq!(component("ABC abc 123"), "ABC%20abc%20123");
        assert_eq!(component("шеллы"), "%D1%88%D0%B5%D0%BB%D0%BB%D1%8B");
        // RFC 3986 section 2.3: only ALPHA / DIGIT / "-" / "." / "_" / "~".
        let strict = json!({ "text": "-.!~*'()_", "set": "unreserved" });
        assert_eq!(encoded("url-encode", strict), "-.%21~%2A%27%28%29_");
        let bytes = json!({ "text": "00ff", "encoding": "hex" });
        assert_eq!(encoded("url-encode", bytes), "%00%FF");
        let bad = json!({ "text": "a", "set": "path" });
        assert_eq!(field_of_error("url-encode", bad).as_deref(), Some("set"));
    }

    #[test]
    fn url_decoding_reverses_it() {
        let decode = |text: &str| decoded_text("url-decode", json!({ "text": text }));
        assert_eq!(decode("%3B%2C%2F%3F%3A%40%26%3D%2B%24%23"), ";,/?:@&=+$#");
        assert_eq!(decode("%D1%88%D0%B5%D0%BB%D0%BB%D1%8B"), "шеллы");
        assert_eq!(decode("a+b%20c"), "a+b c");
        // A malformed sequence stays as written (WHATWG URL percent-decode).
        assert_eq!(decode("100%"), "100%");
        let form = json!({ "text": "a+b%2Bc", "plusAsSpace": true });
        assert_eq!(decoded_text("url-decode", form), "a b+c");
        let binary = run("url-decode", json!({ "text": "%FF%00" }));
        assert_eq!(binary, json!({ "text": null, "hex": "ff00", "length": 2 }));
        let long = json!({ "text": "a".repeat(crate::MAX_TEXT as usize + 1) });
        assert_eq!(field_of_error("url-decode", long).as_deref(), Some("text"));
    }
}
