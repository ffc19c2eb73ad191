//! Identifiers: new UUIDs (v4, v7) and ULIDs, and what a UUID says of itself.

use crate::{tool, Tool, ToolError};
use chrono::{DateTime, SecondsFormat};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::{Uuid, Variant, Version};

pub static TOOLS: &[Tool] = &[
    tool! {
        slug: "uuid", name: "UUID", category: "ids",
        tags: ["uuid", "guid", "uuidv4", "uuidv7", "rfc9562", "random"],
        method: Get, path: "/api/uuid",
        description: "New random UUIDs (RFC 9562): version 4 (random) or 7 (time-ordered), 1 to 100 of them.",
        run: uuid, example: { "version": 7, "count": 2 },
        cost: Light,
    },
    tool! {
        slug: "ulid", name: "ULID", category: "ids",
        tags: ["ulid", "sortable", "random", "crockford-base32"],
        method: Get, path: "/api/ulid",
        description: "New ULIDs (time-ordered, Crockford Base32), 1 to 100 of them, increasing within a call.",
        run: ulid, example: { "count": 3 },
        cost: Light,
    },
    tool! {
        slug: "uuid-parse", name: "Parse a UUID", category: "ids",
        tags: ["uuid", "guid", "rfc9562", "validate", "timestamp"],
        method: Get, path: "/api/uuid-parse",
        description: "A UUID's version, variant and canonical lower-case form, and for a version 7 UUID the Unix time in it.",
        run: uuid_parse, example: { "uuid": "017F22E2-79B0-7CC3-98C4-DC0C0C07398F" },
        cost: Light,
    },
];

fn four() -> u8 {
    4
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UuidInput {
    /// The UUID version: 4 (random) or 7 (Unix time in milliseconds, then
    /// random; sorts by creation time). Default 4.
    #[serde(default = "four")]
    #[schemars(extend("enum" = [4, 7]))]
    pub version: u8,
    /// How many UUIDs, 1 to 100 (default 1).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    pub count: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Uuids {
    pub version: u8,
    /// Hyphenated, lower case.
    pub uuids: Vec<String>,
}

/// `count` checked against its bounds (the schema's, kept here too).
fn checked_count(count: u32) -> Result<usize, ToolError> {
    if (1..=100).contains(&count) {
        Ok(count as usize)
    } else {
        Err(ToolError::field("count", "must be from 1 to 100"))
    }
}

fn uuid(input: UuidInput) -> Result<Uuids, ToolError> {
    let count = checked_count(input.count)?;
    let make: fn() -> Uuid = match input.version {
        4 => Uuid::new_v4,
        7 => Uuid::now_v7,
        _ => return Err(ToolError::field("version", "must be 4 or 7")),
    };
    Ok(Uuids {
        version: input.version,
        uuids: (0..count)
            .map(|_| make().hyphenated().to_string())
            .collect(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UlidInput {
    /// How many ULIDs, 1 to 100 (default 1).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    pub count: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ulids {
    /// 26 characters each, in increasing order.
    pub ulids: Vec<String>,
}

fn ulid(input: UlidInput) -> Result<Ulids, ToolError> {
    let count = checked_count(input.count)?;
    // A generator makes each ULID of the call greater than the one before,
    // even within one millisecond; on the (2^80-to-one) overflow of the
    // random part it moves on to the next millisecond.
    let mut generator = ulid::Generator::new();
    let ulids = (0..count)
        .map(|_| {
            generator
                .generate()
                .unwrap_or_else(|overflow| overflow.commit_overflow_increment())
                .to_string()
        })
        .collect();
    Ok(Ulids { ulids })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UuidParseInput {
    /// The UUID: hyphenated, 32 hex digits, `{braced}` or `urn:uuid:`;
    /// either case.
    #[schemars(length(max = 64))]
    pub uuid: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParsedUuid {
    /// Hyphenated, lower case.
    pub uuid: String,
    /// The version field, 0 to 15.
    pub version: usize,
    /// What the version means, or null if it is not one RFC 9562 defines.
    pub version_name: Option<&'static str>,
    /// `ncs`, `rfc9562` (the variant of all UUIDs RFC 9562/4122 define),
    /// `microsoft` or `future`.
    pub variant: &'static str,
    /// For version 7, the Unix time in milliseconds.
    pub unix_ms: Option<u64>,
    /// For version 7, that time in RFC 3339, UTC.
    pub timestamp: Option<String>,
}

fn version_name(version: Version) -> &'static str {
    match version {
        Version::Nil => "nil",
        Version::Mac => "gregorian-time",
        Version::Dce => "dce-security",
        Version::Md5 => "name-based-md5",
        Version::Random => "random",
        Version::Sha1 => "name-based-sha1",
        Version::SortMac => "reordered-gregorian-time",
        Version::SortRand => "unix-time",
        Version::Custom => "custom",
        Version::Max => "max",
        _ => "unknown",
    }
}

fn variant_name(variant: Variant) -> &'static str {
    match variant {
        Variant::NCS => "ncs",
        Variant::RFC4122 => "rfc9562",
        Variant::Microsoft => "microsoft",
        Variant::Future => "future",
        _ => "unknown",
    }
}

fn uuid_parse(input: UuidParseInput) -> Result<ParsedUuid, ToolError> {
    let uuid =
        Uuid::try_parse(input.uuid.trim()).map_err(|error| ToolError::field("uuid", error))?;
    let unix_ms = match uuid.get_version() {
        Some(Version::SortRand) => uuid.get_timestamp().map(|timestamp| {
            let (seconds, nanos) = timestamp.to_unix();
            seconds * 1000 + u64::from(nanos) / 1_000_000
        }),
        _ => None,
    };
    let timestamp = unix_ms
        .and_then(|ms| i64::try_from(ms).ok())
        .and_then(DateTime::from_timestamp_millis)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Millis, true));
    Ok(ParsedUuid {
        uuid: uuid.hyphenated().to_string(),
        version: uuid.get_version_num(),
        version_name: uuid.get_version().map(version_name),
        variant: variant_name(uuid.get_variant()),
        unix_ms,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use crate::testing::{field_of_error, run};
    use serde_json::{json, Value};

    fn strings(value: &Value) -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item.as_str().unwrap().to_string())
            .collect()
    }

    /// Hyphenated lower-case hex, version nibble `version`, variant `10xx`.
    fn assert_uuid_form(text: &str, version: char) {
        let groups: Vec<&str> = text.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|group| group.len()).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12], "{text}");
        assert!(
            text.chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "{text}"
        );
        assert_eq!(groups[2].chars().next(), Some(version), "{text}");
        assert!(
            matches!(groups[3].chars().next(), Some('8' | '9' | 'a' | 'b')),
            "{text}"
        );
    }

    #[test]
    fn new_uuids_have_their_version() {
        let one = run("uuid", json!({}));
        assert_eq!(one["version"], 4);
        let uuids = strings(&one["uuids"]);
        assert_eq!(uuids.len(), 1);
        assert_uuid_form(&uuids[0], '4');

        let many = run("uuid", json!({ "version": 4, "count": 100 }));
        let uuids = strings(&many["uuids"]);
        assert_eq!(uuids.len(), 100);
        let distinct: std::collections::HashSet<_> = uuids.iter().collect();
        assert_eq!(distinct.len(), 100);
        for uuid in &uuids {
            assert_uuid_form(uuid, '4');
        }

        let before = chrono::Utc::now().timestamp_millis();
        let v7 = run("uuid", json!({ "version": 7, "count": 50 }));
        let after = chrono::Utc::now().timestamp_millis();
        let uuids = strings(&v7["uuids"]);
        assert_eq!(uuids.len(), 50);
        for uuid in &uuids {
            assert_uuid_form(uuid, '7');
            let parsed = run("uuid-parse", json!({ "uuid": uuid }));
            let ms = parsed["unixMs"].as_i64().unwrap();
            assert!(before <= ms && ms <= after, "{uuid}");
        }
        // Time-ordered: each sorts after the one before.
        assert!(uuids.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn uuid_refuses_other_versions_and_counts() {
        for input in [json!({ "version": 1 }), json!({ "version": "four" })] {
            assert_eq!(field_of_error("uuid", input).as_deref(), Some("version"));
        }
        for count in [0, 101, -1] {
            let input = json!({ "count": count });
            assert_eq!(field_of_error("uuid", input).as_deref(), Some("count"));
        }
    }

    #[test]
    fn new_ulids_are_well_formed_and_increasing() {
        let ulids = strings(&run("ulid", json!({ "count": 100 }))["ulids"]);
        assert_eq!(ulids.len(), 100);
        for ulid in &ulids {
            // 26 characters of Crockford's Base32 (no I, L, O, U).
            assert_eq!(ulid.len(), 26, "{ulid}");
            assert!(
                ulid.chars()
                    .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"ILOU".contains(c))),
                "{ulid}"
            );
        }
        assert!(ulids.windows(2).all(|pair| pair[0] < pair[1]));
        // Its first 10 characters are the time in milliseconds.
        let decoded = ulid::Ulid::from_string(&ulids[0]).unwrap();
        let now = chrono::Utc::now().timestamp_millis() as u64;
        assert!(now - decoded.timestamp_ms() < 60_000);
        assert_eq!(strings(&run("ulid", json!({}))["ulids"]).len(), 1);
        let input = json!({ "count": 1000 });
        assert_eq!(field_of_error("ulid", input).as_deref(), Some("count"));
    }

    #[test]
    fn parses_the_rfc_9562_examples() {
        // RFC 9562 Appendix A: the example UUID of each version.
        let cases = [
            ("C232AB00-9414-11EC-B3C8-9F6BDECED846", 1, "gregorian-time"),
            ("5df41881-3aed-3515-88a7-2f4a814cf09e", 3, "name-based-md5"),
            ("919108f7-52d1-4320-9bac-f847db4148a8", 4, "random"),
            ("2ed6657d-e927-568b-95e1-2665a8aea6a2", 5, "name-based-sha1"),
            (
                "1EC9414C-232A-6B00-B3C8-9F6BDECED846",
                6,
                "reordered-gregorian-time",
            ),
            ("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", 7, "unix-time"),
            ("2489E9AD-2EE2-8E00-8EC9-32D5F69181C0", 8, "custom"),
        ];
        for (uuid, version, name) in cases {
            let parsed = run("uuid-parse", json!({ "uuid": uuid }));
            assert_eq!(parsed["uuid"], uuid.to_lowercase());
            assert_eq!(parsed["version"], version, "{uuid}");
            assert_eq!(parsed["versionName"], name, "{uuid}");
            assert_eq!(parsed["variant"], "rfc9562", "{uuid}");
        }
        // A.6: the v7 example's time is 0x017F22E279B0 ms, "Tuesday,
        // February 22, 2022 2:22:22.00 PM GMT-05:00".
        let v7 = run(
            "uuid-parse",
            json!({ "uuid": "urn:uuid:017f22e2-79b0-7cc3-98c4-dc0c0c07398f" }),
        );
        assert_eq!(v7["unixMs"], 0x017F22E279B0u64);
        assert_eq!(v7["timestamp"], "2022-02-22T19:22:22.000Z");
        // Section 5.9 and 5.10: the Nil and Max UUIDs; no time outside v7.
        let nil = run(
            "uuid-parse",
            json!({ "uuid": "00000000000000000000000000000000" }),
        );
        assert_eq!(
            nil,
            json!({
                "uuid": "00000000-0000-0000-0000-000000000000", "version": 0,
                "versionName": "nil", "variant": "ncs", "unixMs": null, "timestamp": null,
            })
        );
        let max = run(
            "uuid-parse",
            json!({ "uuid": "{FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF}" }),
        );
        assert_eq!(max["version"], 15);
        assert_eq!(max["versionName"], "max");
        assert_eq!(max["variant"], "future");
    }

    #[test]
    fn uuid_parse_refuses_what_is_not_a_uuid() {
        for bad in [
            "",
            "not-a-uuid",
            "017F22E2-79B0-7CC3-98C4-DC0C0C07398",
            "017F22E2-79B0-7CC3-98C4-DC0C0C07398G",
            "017F22E279B0-7CC3-98C4-DC0C0C07398F0",
        ] {
            let input = json!({ "uuid": bad });
            assert_eq!(
                field_of_error("uuid-parse", input).as_deref(),
                Some("uuid"),
                "{bad}"
            );
        }
        let long = json!({ "uuid": "0".repeat(65) });
        assert_eq!(field_of_error("uuid-parse", long).as_deref(), Some("uuid"));
    }
}
