//! Ethereum: EIP-55 addresses, function selectors, the Solidity ABI and
//! EIP-191 signatures, all by `alloy`.

use crate::{tool, Encoding, Tool, ToolError, MAX_TEXT};
use alloy::dyn_abi::parser::{is_valid_identifier, Parameters};
use alloy::dyn_abi::{DynSolType, DynSolValue, Specifier};
use alloy::primitives::{eip191_hash_message, hex, keccak256, Address, Signature};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub static TOOLS: &[Tool] = &[
    tool! {
        slug: "evm-checksum-address", name: "EVM checksum address", category: "evm",
        tags: ["ethereum", "address", "eip-55", "checksum"],
        method: Get, path: "/api/evm-checksum-address",
        description: "An Ethereum address in its EIP-55 mixed-case checksum form, and whether the input's own checksum (if mixed case) is right.",
        run: checksum_address,
        example: { "address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed" },
        cost: Light,
    },
    tool! {
        slug: "evm-function-selector", name: "EVM function selector", category: "evm",
        tags: ["ethereum", "solidity", "selector", "abi", "keccak256"],
        method: Get, path: "/api/evm-function-selector",
        description: "A Solidity function signature's canonical form, 4-byte selector and full Keccak-256 hash, e.g. transfer(address,uint256) -> 0xa9059cbb.",
        run: function_selector, example: { "signature": "transfer(address,uint256)" },
        cost: Light,
    },
    tool! {
        slug: "abi-encode", name: "ABI encode", category: "evm",
        tags: ["ethereum", "solidity", "abi", "calldata", "encode"],
        method: Post, path: "/api/abi-encode",
        description: "Solidity ABI-encodes values of the given types, or a function call (selector first) when a signature is given instead of types.",
        run: abi_encode,
        example: { "signature": "baz(uint32,bool)", "values": [69, true] },
    },
    tool! {
        slug: "abi-decode", name: "ABI decode", category: "evm",
        tags: ["ethereum", "solidity", "abi", "calldata", "decode"],
        method: Post, path: "/api/abi-decode",
        description: "Decodes Solidity ABI data into JSON values of the given types (integers as decimal strings), or a function call's arguments when a signature is given.",
        run: abi_decode,
        example: {
            "types": ["uint32", "bool"],
            "data": "0x00000000000000000000000000000000000000000000000000000000000000450000000000000000000000000000000000000000000000000000000000000001"
        },
    },
    tool! {
        slug: "eip191-recover", name: "EIP-191 recover", category: "evm",
        tags: ["ethereum", "signature", "personal-sign", "ecrecover", "eip-191"],
        method: Post, path: "/api/eip191-recover",
        description: "The address that signed a message with personal_sign (EIP-191), recovered from the 65-byte signature, checksummed.",
        run: eip191_recover,
        example: {
            "message": "hello",
            "signature": "0xf16ea9a3478698f695fd1401bfe27e9e4a7e8e3da94aa72b021125e31fa899cc573c48ea3fe1d4ab61a9db10c19032026e3ed2dbccba5a178235ac27f94504311c"
        },
        cost: Light,
    },
];

/// The most types (or values) one call takes.
const MAX_TYPES: usize = 32;
/// The longest Solidity type name taken.
const MAX_TYPE_NAME: u32 = 256;
/// The most words a decoding may produce. ABI data can point many times at
/// the same bytes, so a decoding is refused up front if its types could
/// expand past this from the data given.
const MAX_DECODED_WORDS: usize = 1 << 19;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddressInput {
    /// A 20-byte address in hex, any case, with or without `0x`.
    #[schemars(length(max = 64))]
    pub address: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressOutput {
    /// The EIP-55 checksummed form.
    pub address: String,
    pub lowercase: String,
    /// `valid` or `invalid` when the input is mixed case (so carries a
    /// checksum), `none` when it is all one case.
    pub input_checksum: &'static str,
}

/// A hex address; `field` names it in an error.
fn parse_address(field: &str, text: &str) -> Result<Address, ToolError> {
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.len() != 40 {
        return Err(ToolError::field(
            field,
            format!(
                "an address is 40 hex digits (20 bytes), found {}",
                digits.len()
            ),
        ));
    }
    digits
        .parse::<Address>()
        .map_err(|error| ToolError::field(field, format!("not hex: {error}")))
}

fn checksum_address(input: AddressInput) -> Result<AddressOutput, ToolError> {
    let address = parse_address("address", &input.address)?;
    let digits = input.address.trim();
    let digits = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .unwrap_or(digits);
    let mixed = digits.chars().any(|c| c.is_ascii_lowercase())
        && digits.chars().any(|c| c.is_ascii_uppercase());
    let input_checksum = if !mixed {
        "none"
    } else if Address::parse_checksummed(format!("0x{digits}"), None).is_ok() {
        "valid"
    } else {
        "invalid"
    };
    Ok(AddressOutput {
        address: address.to_checksum(None),
        lowercase: format!("{address:#x}"),
        input_checksum,
    })
}

/// A function signature, canonical: its name and parameter types.
struct FunctionSignature {
    name: String,
    types: Vec<DynSolType>,
}

impl FunctionSignature {
    /// `name(type,type,...)`, as the selector hashes it.
    fn canonical(&self) -> String {
        let types: Vec<String> = self.types.iter().map(DynSolType::to_string).collect();
        format!("{}({})", self.name, types.join(","))
    }

    fn selector(&self) -> [u8; 4] {
        let hash = keccak256(self.canonical().as_bytes());
        [hash[0], hash[1], hash[2], hash[3]]
    }
}

/// `text` with runs of white space as one space, and none beside
/// punctuation: `f( uint a , bool )` is `f(uint a,bool)`.
fn squeeze_spaces(text: &str) -> String {
    let punctuation = |c: char| "(),[]".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !punctuation(c) && out.chars().last().is_some_and(|p| !punctuation(p)) {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

/// `name(type [name], ...)`, spaces anywhere, an optional leading `function`.
fn parse_signature(field: &str, text: &str) -> Result<FunctionSignature, ToolError> {
    let squeezed = squeeze_spaces(text);
    let text = squeezed.as_str();
    let text = text
        .strip_prefix("function ")
        .map(str::trim_start)
        .unwrap_or(text);
    let Some(open) = text.find('(') else {
        return Err(ToolError::field(
            field,
            "expected `name(type,...)`, e.g. `transfer(address,uint256)`",
        ));
    };
    let name = text[..open].trim();
    if !is_valid_identifier(name) {
        return Err(ToolError::field(
            field,
            format!("`{name}` is not a valid function name"),
        ));
    }
    let parameters = Parameters::parse(text[open..].trim())
        .map_err(|error| ToolError::field(field, format!("the parameters: {error}")))?;
    let types = parameters
        .params
        .iter()
        .map(|param| param.resolve())
        .collect::<Result<Vec<DynSolType>, _>>()
        .map_err(|error| ToolError::field(field, error))?;
    if types.len() > MAX_TYPES {
        return Err(ToolError::field(
            field,
            format!("at most {MAX_TYPES} parameters"),
        ));
    }
    Ok(FunctionSignature {
        name: name.to_string(),
        types,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SelectorInput {
    /// A function signature, e.g. `transfer(address,uint256)`; parameter names and spaces are allowed and dropped.
    #[schemars(length(max = 1024))]
    pub signature: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectorOutput {
    /// The canonical signature the selector hashes.
    pub signature: String,
    /// The first 4 bytes of the hash, `0x`-prefixed.
    pub selector: String,
    /// The full Keccak-256 of the canonical signature.
    pub hash: String,
}

fn function_selector(input: SelectorInput) -> Result<SelectorOutput, ToolError> {
    let signature = parse_signature("signature", &input.signature)?;
    let canonical = signature.canonical();
    Ok(SelectorOutput {
        selector: hex::encode_prefixed(signature.selector()),
        hash: hex::encode_prefixed(keccak256(canonical.as_bytes())),
        signature: canonical,
    })
}

/// The types named in `types`, each a Solidity type name.
fn parse_types(types: &[String]) -> Result<Vec<DynSolType>, ToolError> {
    types
        .iter()
        .enumerate()
        .map(|(index, name)| {
            DynSolType::parse(name.trim())
                .map_err(|error| ToolError::field(format!("types/{index}"), error))
        })
        .collect()
}

/// The types to use: from `types` or from `signature`, exactly one given.
fn types_or_signature(
    types: Option<&[String]>,
    signature: Option<&str>,
) -> Result<(Vec<DynSolType>, Option<FunctionSignature>), ToolError> {
    match (types, signature) {
        (Some(types), None) => Ok((parse_types(types)?, None)),
        (None, Some(signature)) => {
            let signature = parse_signature("signature", signature)?;
            Ok((signature.types.clone(), Some(signature)))
        }
        (Some(_), Some(_)) => Err(ToolError::field(
            "signature",
            "give either `types` or `signature`, not both",
        )),
        (None, None) => Err(ToolError::input("give `types` or `signature`")),
    }
}

/// A JSON value as a value of Solidity type `ty`: arrays and tuples as JSON
/// arrays, strings as strings, everything else as alloy reads its text
/// (numbers also as JSON integers; bytes, addresses as hex).
fn to_sol(ty: &DynSolType, json: &Value, path: &str) -> Result<DynSolValue, ToolError> {
    let items = |expected: Option<usize>| -> Result<&Vec<Value>, ToolError> {
        let Value::Array(items) = json else {
            return Err(ToolError::field(path, format!("a `{ty}` is a JSON array")));
        };
        match expected {
            Some(count) if items.len() != count => Err(ToolError::field(
                path,
                format!("a `{ty}` has {count} items, found {}", items.len()),
            )),
            _ => Ok(items),
        }
    };
    let each = |inner: &[&DynSolType], items: &[Value]| -> Result<Vec<DynSolValue>, ToolError> {
        items
            .iter()
            .zip(inner)
            .enumerate()
            .map(|(index, (item, ty))| to_sol(ty, item, &format!("{path}/{index}")))
            .collect()
    };
    match ty {
        DynSolType::String => match json {
            Value::String(text) => Ok(DynSolValue::String(text.clone())),
            _ => Err(ToolError::field(path, "a `string` is a JSON string")),
        },
        DynSolType::Array(inner) => {
            let items = items(None)?;
            let inner = vec![inner.as_ref(); items.len()];
            Ok(DynSolValue::Array(each(&inner, items)?))
        }
        DynSolType::FixedArray(inner, size) => {
            let items = items(Some(*size))?;
            let inner = vec![inner.as_ref(); items.len()];
            Ok(DynSolValue::FixedArray(each(&inner, items)?))
        }
        DynSolType::Bool
        | DynSolType::Int(_)
        | DynSolType::Uint(_)
        | DynSolType::FixedBytes(_)
        | DynSolType::Address
        | DynSolType::Function
        | DynSolType::Bytes => {
            let text = match json {
                Value::String(text) => text.clone(),
                Value::Bool(flag) => flag.to_string(),
                Value::Number(number) if number.is_i64() || number.is_u64() => number.to_string(),
                Value::Number(_) => {
                    return Err(ToolError::field(
                        path,
                        "not an exact integer: give large or fractional amounts as a string",
                    ))
                }
                _ => {
                    return Err(ToolError::field(
                        path,
                        format!("a `{ty}` is a string, number or boolean"),
                    ))
                }
            };
            ty.coerce_str(&text)
                .map_err(|error| ToolError::field(path, error))
        }
        tuple => match tuple.as_tuple() {
            Some(inner) => {
                let items = items(Some(inner.len()))?;
                let inner: Vec<&DynSolType> = inner.iter().collect();
                Ok(DynSolValue::Tuple(each(&inner, items)?))
            }
            None => Err(ToolError::field(path, format!("`{ty}` is not supported"))),
        },
    }
}

/// A decoded value as JSON: integers as decimal strings, addresses
/// checksummed, bytes as `0x` hex, arrays and tuples as arrays.
fn to_json(value: &DynSolValue) -> Value {
    match value {
        DynSolValue::Bool(flag) => Value::Bool(*flag),
        DynSolValue::Int(number, _) => Value::String(number.to_string()),
        DynSolValue::Uint(number, _) => Value::String(number.to_string()),
        DynSolValue::FixedBytes(word, size) => {
            Value::String(hex::encode_prefixed(&word[..(*size).min(32)]))
        }
        DynSolValue::Address(address) => Value::String(address.to_checksum(None)),
        DynSolValue::Function(function) => Value::String(hex::encode_prefixed(function)),
        DynSolValue::Bytes(bytes) => Value::String(hex::encode_prefixed(bytes)),
        DynSolValue::String(text) => Value::String(text.clone()),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        other => match other.as_tuple() {
            Some(items) => Value::Array(items.iter().map(to_json).collect()),
            None => Value::Null,
        },
    }
}

/// The most words decoding `ty` could produce from `words` words of data,
/// saturating: every item counts at least one, a dynamic array at most
/// `words` items, a string or bytes at most `words` words.
fn decoded_words(ty: &DynSolType, words: usize) -> usize {
    match ty {
        DynSolType::Bytes | DynSolType::String => words.max(1),
        DynSolType::Array(inner) => {
            1usize.saturating_add(words.saturating_mul(decoded_words(inner, words)))
        }
        DynSolType::FixedArray(inner, size) => {
            1usize.saturating_add(size.saturating_mul(decoded_words(inner, words)))
        }
        DynSolType::Bool
        | DynSolType::Int(_)
        | DynSolType::Uint(_)
        | DynSolType::FixedBytes(_)
        | DynSolType::Address
        | DynSolType::Function => 1,
        tuple => tuple
            .as_tuple()
            .unwrap_or_default()
            .iter()
            .fold(1usize, |sum, inner| {
                sum.saturating_add(decoded_words(inner, words))
            }),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EncodeInput {
    /// The Solidity types, e.g. `["uint256", "address[]", "(bool,string)"]`; or give `signature` instead.
    #[schemars(length(max = 32), inner(length(max = MAX_TYPE_NAME)))]
    pub types: Option<Vec<String>>,
    /// A function signature, e.g. `transfer(address,uint256)`: its parameters are the types, and the encoding starts with its selector.
    #[schemars(length(max = 1024))]
    pub signature: Option<String>,
    /// One JSON value per type: integers as numbers or decimal/`0x` strings, addresses and bytes as hex strings, arrays and tuples as JSON arrays.
    #[schemars(length(max = 32))]
    pub values: Vec<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EncodeOutput {
    /// The encoding (with the selector first when a signature was given), `0x` hex.
    pub data: String,
    /// The canonical types encoded.
    pub types: Vec<String>,
    /// The canonical signature, when one was given.
    pub signature: Option<String>,
    pub selector: Option<String>,
}

fn abi_encode(input: EncodeInput) -> Result<EncodeOutput, ToolError> {
    let (types, signature) =
        types_or_signature(input.types.as_deref(), input.signature.as_deref())?;
    if input.values.len() != types.len() {
        return Err(ToolError::field(
            "values",
            format!("{} values for {} types", input.values.len(), types.len()),
        ));
    }
    let values = types
        .iter()
        .zip(&input.values)
        .enumerate()
        .map(|(index, (ty, value))| to_sol(ty, value, &format!("values/{index}")))
        .collect::<Result<Vec<_>, _>>()?;
    let encoded = DynSolValue::Tuple(values).abi_encode_params();
    let selector = signature.as_ref().map(FunctionSignature::selector);
    let mut data = selector.map(Vec::from).unwrap_or_default();
    data.extend_from_slice(&encoded);
    Ok(EncodeOutput {
        data: hex::encode_prefixed(data),
        types: types.iter().map(DynSolType::to_string).collect(),
        signature: signature.as_ref().map(FunctionSignature::canonical),
        selector: selector.map(hex::encode_prefixed),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DecodeInput {
    /// The Solidity types of the encoded values, in order; or give `signature` instead.
    #[schemars(length(max = 32), inner(length(max = MAX_TYPE_NAME)))]
    pub types: Option<Vec<String>>,
    /// A function signature: `data` is then calldata, starting with its selector.
    #[schemars(length(max = 1024))]
    pub signature: Option<String>,
    /// The ABI encoding, hex, with or without `0x`.
    #[schemars(length(max = MAX_TEXT))]
    pub data: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecodeOutput {
    /// One JSON value per type.
    pub values: Vec<Value>,
    /// The canonical types decoded.
    pub types: Vec<String>,
    /// The canonical signature, when one was given.
    pub signature: Option<String>,
}

fn abi_decode(input: DecodeInput) -> Result<DecodeOutput, ToolError> {
    let (types, signature) =
        types_or_signature(input.types.as_deref(), input.signature.as_deref())?;
    let bytes = Encoding::Hex.decode("data", input.data.trim())?;
    let mut data = bytes.as_slice();
    if let Some(signature) = &signature {
        let selector = signature.selector();
        match data.split_first_chunk::<4>() {
            Some((head, rest)) if *head == selector => data = rest,
            _ => {
                return Err(ToolError::field(
                    "data",
                    format!(
                        "does not start with {}'s selector {}",
                        signature.canonical(),
                        hex::encode_prefixed(selector)
                    ),
                ))
            }
        }
    }
    let type_names = types.iter().map(DynSolType::to_string).collect();
    let tuple = DynSolType::Tuple(types);
    if decoded_words(&tuple, data.len() / 32) > MAX_DECODED_WORDS {
        return Err(ToolError::field(
            "types",
            "these types could decode to too large a result from this much data",
        ));
    }
    let decoded = tuple
        .abi_decode_sequence(data)
        .map_err(|error| ToolError::field("data", error))?;
    let values = match &decoded {
        DynSolValue::Tuple(values) => values.iter().map(to_json).collect(),
        other => vec![to_json(other)],
    };
    Ok(DecodeOutput {
        values,
        types: type_names,
        signature: signature.as_ref().map(FunctionSignature::canonical),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecoverInput {
    /// The message that was signed (before the EIP-191 prefix).
    #[schemars(length(max = MAX_TEXT))]
    pub message: String,
    /// How `message` is written (default `utf8`); `hex` for a message of raw bytes.
    #[serde(default)]
    pub message_encoding: Encoding,
    /// The 65-byte signature `r || s || v`, hex (v 27/28 or 0/1).
    #[schemars(length(max = 140))]
    pub signature: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoverOutput {
    /// The signer, EIP-55 checksummed.
    pub address: String,
    /// keccak256("\x19Ethereum Signed Message:\n" + length + message), the digest signed.
    pub message_hash: String,
}

fn eip191_recover(input: RecoverInput) -> Result<RecoverOutput, ToolError> {
    let message = input.message_encoding.decode("message", &input.message)?;
    let bytes = Encoding::Hex.decode("signature", input.signature.trim())?;
    if bytes.len() != 65 {
        return Err(ToolError::field(
            "signature",
            format!("a signature is 65 bytes (r, s, v), found {}", bytes.len()),
        ));
    }
    let signature =
        Signature::from_raw(&bytes).map_err(|error| ToolError::field("signature", error))?;
    let address = signature
        .recover_address_from_msg(&message)
        .map_err(|error| ToolError::field("signature", error))?;
    Ok(RecoverOutput {
        address: address.to_checksum(None),
        message_hash: hex::encode_prefixed(eip191_hash_message(&message)),
    })
}

#[cfg(test)]
mod tests {
    use crate::find;
    use crate::testing::{refused, run};
    use serde_json::{json, Value};

    #[test]
    fn addresses_take_their_eip55_form() {
        // EIP-55's test cases: all caps, all lower, and mixed.
        let cases = [
            "0x52908400098527886E0F7030069857D2E4169EE7",
            "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
            "0xde709f2102306220921060314715629080e2fb77",
            "0x27b1fdb04752bbc536007a920d24acb045561c26",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ];
        for expected in cases {
            let lower = expected.to_lowercase();
            let out = run("evm-checksum-address", json!({ "address": lower }));
            assert_eq!(out["address"], expected);
            assert_eq!(out["inputChecksum"], "none");
            let out = run("evm-checksum-address", json!({ "address": &expected[2..] }));
            assert_eq!(out["address"], expected);
            assert_eq!(out["lowercase"], lower);
        }
        let out = run(
            "evm-checksum-address",
            json!({ "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed" }),
        );
        assert_eq!(out["inputChecksum"], "valid");
        let out = run(
            "evm-checksum-address",
            json!({ "address": "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed" }),
        );
        assert_eq!(out["inputChecksum"], "invalid");
        assert_eq!(
            refused("evm-checksum-address", json!({ "address": "0x1234" })),
            "address"
        );
        assert_eq!(
            refused(
                "evm-checksum-address",
                json!({ "address": "0xZZaeb6053f3e94c9b9a09f33669435e7ef1beaed" })
            ),
            "address"
        );
    }

    #[test]
    fn selectors_match_known_functions() {
        // ERC-20's transfer, and the Solidity ABI spec's examples.
        let out = run(
            "evm-function-selector",
            json!({ "signature": "transfer(address,uint256)" }),
        );
        assert_eq!(out["selector"], "0xa9059cbb");
        assert_eq!(
            out["hash"],
            "0xa9059cbb2ab09eb219583f4a59a5d0623ade346d962bcd4e46b11da047c9049b"
        );
        let out = run(
            "evm-function-selector",
            json!({ "signature": " function transfer( address to , uint amount ) " }),
        );
        assert_eq!(out["signature"], "transfer(address,uint256)");
        assert_eq!(out["selector"], "0xa9059cbb");
        let selector = |signature: &str| {
            run("evm-function-selector", json!({ "signature": signature }))["selector"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(selector("baz(uint32,bool)"), "0xcdcd77c0");
        assert_eq!(selector("bar(bytes3[2])"), "0xfce353f6");
        assert_eq!(selector("sam(bytes,bool,uint256[])"), "0xa5643bf2");
        assert_eq!(selector("f(uint256,uint32[],bytes10,bytes)"), "0x8be65246");
        assert_eq!(selector("balanceOf(address)"), "0x70a08231");
        assert_eq!(
            refused("evm-function-selector", json!({ "signature": "transfer" })),
            "signature"
        );
        assert_eq!(
            refused(
                "evm-function-selector",
                json!({ "signature": "1x(uint256)" })
            ),
            "signature"
        );
        assert_eq!(
            refused("evm-function-selector", json!({ "signature": "f(uint7)" })),
            "signature"
        );
    }

    const WORD: usize = 64;

    fn words(hex: &str) -> Vec<String> {
        hex.trim_start_matches("0x")
            .as_bytes()
            .chunks(WORD)
            .map(|chunk| String::from_utf8(chunk.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn abi_encoding_matches_the_spec_examples() {
        // Solidity ABI spec, "Examples": baz(69, true).
        let out = run(
            "abi-encode",
            json!({ "signature": "baz(uint32,bool)", "values": [69, true] }),
        );
        assert_eq!(
            out["data"],
            "0xcdcd77c0\
             0000000000000000000000000000000000000000000000000000000000000045\
             0000000000000000000000000000000000000000000000000000000000000001"
        );
        assert_eq!(out["selector"], "0xcdcd77c0");
        // sam("dave", true, [1,2,3]).
        let out = run(
            "abi-encode",
            json!({
                "signature": "sam(bytes,bool,uint256[])",
                "values": ["0x64617665", true, [1, 2, "3"]]
            }),
        );
        let data = out["data"].as_str().unwrap();
        assert_eq!(&data[..10], "0xa5643bf2");
        assert_eq!(
            words(&data[10..]),
            [
                "0000000000000000000000000000000000000000000000000000000000000060",
                "0000000000000000000000000000000000000000000000000000000000000001",
                "00000000000000000000000000000000000000000000000000000000000000a0",
                "0000000000000000000000000000000000000000000000000000000000000004",
                "6461766500000000000000000000000000000000000000000000000000000000",
                "0000000000000000000000000000000000000000000000000000000000000003",
                "0000000000000000000000000000000000000000000000000000000000000001",
                "0000000000000000000000000000000000000000000000000000000000000002",
                "0000000000000000000000000000000000000000000000000000000000000003",
            ]
        );
        // f(0x123, [0x456, 0x789], "1234567890", "Hello, world!").
        let out = run(
            "abi-encode",
            json!({
                "types": ["uint256", "uint32[]", "bytes10", "bytes"],
                "values": ["0x123", [1110, 1929], "0x31323334353637383930",
                           "0x48656c6c6f2c20776f726c6421"]
            }),
        );
        assert_eq!(out["selector"], Value::Null);
        assert_eq!(
            words(out["data"].as_str().unwrap()),
            [
                "0000000000000000000000000000000000000000000000000000000000000123",
                "0000000000000000000000000000000000000000000000000000000000000080",
                "3132333435363738393000000000000000000000000000000000000000000000",
                "00000000000000000000000000000000000000000000000000000000000000e0",
                "0000000000000000000000000000000000000000000000000000000000000002",
                "0000000000000000000000000000000000000000000000000000000000000456",
                "0000000000000000000000000000000000000000000000000000000000000789",
                "000000000000000000000000000000000000000000000000000000000000000d",
                "48656c6c6f2c20776f726c642100000000000000000000000000000000000000",
            ]
        );
        // A tuple, a string and a negative int round-trip through decode.
        let types = json!(["(address,string)", "int8", "bytes3[2]"]);
        let values = json!([
            ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "hé"],
            "-5",
            ["0x616263", "0x646566"]
        ]);
        let out = run("abi-encode", json!({ "types": types, "values": values }));
        let back = run("abi-decode", json!({ "types": types, "data": out["data"] }));
        assert_eq!(back["values"], values);

        let refuse = |input: Value| refused("abi-encode", input);
        assert_eq!(
            refuse(json!({ "types": ["uint8"], "values": [256] })),
            "values/0"
        );
        assert_eq!(
            refuse(json!({ "types": ["uint8"], "values": [] })),
            "values"
        );
        assert_eq!(
            refuse(json!({ "types": ["uint8[2]"], "values": [[1]] })),
            "values/0"
        );
        assert_eq!(
            refuse(json!({ "types": ["(bool,address)"], "values": [[true, "0x12"]] })),
            "values/0/1"
        );
        assert_eq!(
            refuse(json!({ "types": ["uint256"], "values": [1.5] })),
            "values/0"
        );
        assert_eq!(
            refuse(json!({ "types": ["uint9"], "values": [1] })),
            "types/0"
        );
        assert_eq!(
            refuse(json!({ "types": ["bool"], "signature": "f(bool)", "values": [true] })),
            "signature"
        );
        let error = find("abi-encode")
            .unwrap()
            .run(json!({ "values": [] }))
            .unwrap_err();
        assert_eq!(error.field, None);
    }

    #[test]
    fn abi_decoding_gives_json_values() {
        // baz(69, true) from the Solidity ABI spec.
        let calldata = "0xcdcd77c0\
             0000000000000000000000000000000000000000000000000000000000000045\
             0000000000000000000000000000000000000000000000000000000000000001";
        let out = run(
            "abi-decode",
            json!({ "signature": "baz(uint32,bool)", "data": calldata }),
        );
        assert_eq!(out["values"], json!(["69", true]));
        assert_eq!(out["signature"], "baz(uint32,bool)");
        let out = run(
            "abi-decode",
            json!({ "types": ["uint32", "bool"], "data": &calldata[10..] }),
        );
        assert_eq!(out["values"], json!(["69", true]));
        // uint256 max stays exact as a decimal string.
        let max = "f".repeat(64);
        let out = run(
            "abi-decode",
            json!({ "types": ["uint256", "int256"], "data": format!("{max}{max}") }),
        );
        assert_eq!(
            out["values"],
            json!([
                "115792089237316195423570985008687907853269984665640564039457584007913129639935",
                "-1"
            ])
        );
        let refuse = |input: Value| refused("abi-decode", input);
        assert_eq!(
            refuse(json!({ "types": ["uint256"], "data": "0x1234" })),
            "data"
        );
        assert_eq!(
            refuse(json!({ "types": ["uint256"], "data": "0xzz" })),
            "data"
        );
        assert_eq!(
            refuse(json!({ "signature": "transfer(address,uint256)", "data": calldata })),
            "data"
        );
        // A fixed array too large for any data is refused before decoding,
        // as are types whose repeated offsets could blow up.
        assert_eq!(
            refuse(json!({ "types": ["uint256[100000000][]"], "data": "00".repeat(64) })),
            "types"
        );
        assert_eq!(
            refuse(json!({ "types": ["string[][][]"], "data": "00".repeat(16384) })),
            "types"
        );
    }

    #[test]
    fn personal_sign_signatures_recover_their_signer() {
        use alloy::signers::local::PrivateKeySigner;
        use alloy::signers::SignerSync;
        // Anvil's (Hardhat's) first development account.
        let signer: PrivateKeySigner =
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
                .parse()
                .unwrap();
        assert_eq!(
            signer.address().to_checksum(None),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        let signature = signer.sign_message_sync(b"hello").unwrap();
        let hex = alloy::primitives::hex::encode_prefixed(signature.as_bytes());
        let out = run(
            "eip191-recover",
            json!({ "message": "hello", "signature": hex }),
        );
        assert_eq!(out["address"], "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        // keccak256("\x19Ethereum Signed Message:\n5hello").
        assert_eq!(
            out["messageHash"],
            "0x50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
        );
        // The same bytes given as hex.
        let out = run(
            "eip191-recover",
            json!({ "message": "0x68656c6c6f", "messageEncoding": "hex", "signature": hex }),
        );
        assert_eq!(out["address"], "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        // Another message recovers someone else.
        let out = run(
            "eip191-recover",
            json!({ "message": "hellO", "signature": hex }),
        );
        assert_ne!(out["address"], "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        // The example is this signature.
        let example = (find("eip191-recover").unwrap().example)();
        assert_eq!(example["signature"], hex.as_str());

        let refuse = |input: Value| refused("eip191-recover", input);
        assert_eq!(
            refuse(json!({ "message": "hello", "signature": "0x1234" })),
            "signature"
        );
        let bad_v = format!("{}05", &hex[..hex.len() - 2]);
        assert_eq!(
            refuse(json!({ "message": "hello", "signature": bad_v })),
            "signature"
        );
        assert_eq!(
            refuse(json!({ "message": "zz", "messageEncoding": "hex", "signature": hex })),
            "message"
        );
    }
}
