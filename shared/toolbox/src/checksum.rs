//! Check digits: the Luhn algorithm (card numbers, IMEIs) and IBANs.

use crate::{tool, Tool, ToolError};
use iban::{Iban, IbanLike, ParseBaseIbanError, ParseIbanError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub static TOOLS: &[Tool] = &[
    tool! {
        slug: "luhn", name: "Luhn check", category: "checksum",
        tags: ["luhn", "mod10", "credit-card", "imei", "check-digit", "validate"],
        method: Post, path: "/api/luhn",
        description: "Whether a number passes the Luhn (mod 10) check, as card numbers and IMEIs must, and the check digit that would complete it.",
        run: luhn_check, example: { "number": "4111 1111 1111 1111" },
        cost: Light,
    },
    tool! {
        slug: "iban-validate", name: "Validate an IBAN", category: "checksum",
        tags: ["iban", "bank", "iso13616", "check-digit", "validate"],
        method: Post, path: "/api/iban-validate",
        description: "Whether an IBAN is valid (ISO 13616: check digits and the country's format), with its country code, check digits, BBAN, bank and branch identifiers, and electronic and print forms; or why it is not.",
        run: iban_validate, example: { "iban": "GB82 WEST 1234 5698 7654 32" },
        cost: Light,
    },
];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LuhnInput {
    /// The number: decimal digits, optionally grouped with spaces or `-`.
    #[schemars(length(max = 256))]
    pub number: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LuhnOutput {
    /// The number's digits, without spaces or `-`.
    pub digits: String,
    /// Whether the number, its last digit as the check digit, passes.
    pub valid: bool,
    /// The digit that, appended to the number, makes it pass.
    pub check_digit: u8,
    /// The number with that check digit appended.
    pub completed: String,
}

fn luhn_check(input: LuhnInput) -> Result<LuhnOutput, ToolError> {
    if let Some(bad) = input
        .number
        .chars()
        .find(|c| !(c.is_ascii_digit() || *c == ' ' || *c == '-'))
    {
        return Err(ToolError::field(
            "number",
            format!("{bad:?} is not a digit, a space or `-`"),
        ));
    }
    let digits: String = input.number.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Err(ToolError::field("number", "has no digits"));
    }
    // Exactly one digit appended makes any number pass; `luhn::valid` finds
    // it (`luhn::checksum` adds in a u8, which overflows past 28 digits).
    let (check_digit, completed) = (0..=9u8)
        .map(|digit| (digit, format!("{digits}{digit}")))
        .find(|(_, completed)| luhn::valid(completed))
        .ok_or_else(|| ToolError::field("number", "no check digit completes it"))?;
    Ok(LuhnOutput {
        valid: luhn::valid(&digits),
        digits,
        check_digit,
        completed,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IbanInput {
    /// The IBAN, electronic (`DE89370400440532013000`) or in print with
    /// spaces (`DE89 3704 0044 0532 0130 00`); either case.
    #[schemars(length(max = 64))]
    pub iban: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IbanOutput {
    pub valid: bool,
    /// Why it is not valid (null when it is).
    pub reason: Option<&'static str>,
    /// ISO 3166 country code, when the IBAN's structure and check digits are right.
    pub country_code: Option<String>,
    pub check_digits: Option<String>,
    /// The Basic Bank Account Number: the IBAN after its first four characters.
    pub bban: Option<String>,
    /// The bank identifier within the BBAN, for a valid IBAN of a country that has one.
    pub bank_identifier: Option<String>,
    /// The branch identifier within the BBAN, for a valid IBAN of a country that has one.
    pub branch_identifier: Option<String>,
    /// Without spaces, upper case.
    pub electronic: Option<String>,
    /// In groups of four, separated by spaces.
    pub print: Option<String>,
}

impl IbanOutput {
    /// The parts any IBAN-shaped value with right check digits has.
    fn parts(iban: &impl IbanLike, print: String) -> IbanOutput {
        IbanOutput {
            country_code: Some(iban.country_code().to_string()),
            check_digits: Some(iban.check_digits_str().to_string()),
            bban: Some(iban.bban_unchecked().to_string()),
            electronic: Some(iban.electronic_str().to_string()),
            print: Some(print),
            ..IbanOutput::default()
        }
    }
}

fn iban_validate(input: IbanInput) -> Result<IbanOutput, ToolError> {
    // The crate takes the electronic form, or print with single spaces
    // between groups of four and an upper-case country code: normalize any
    // spacing and case first.
    let electronic: String = input
        .iban
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Ok(match electronic.parse::<Iban>() {
        Ok(iban) => IbanOutput {
            valid: true,
            bank_identifier: iban.bank_identifier().map(str::to_string),
            branch_identifier: iban.branch_identifier().map(str::to_string),
            ..IbanOutput::parts(&iban, iban.to_string())
        },
        Err(error) => {
            let reason = match error {
                ParseIbanError::InvalidBaseIban {
                    source: ParseBaseIbanError::InvalidFormat,
                } => "not in the IBAN format: two letters, two digits, then up to 30 letters and digits",
                ParseIbanError::InvalidBaseIban {
                    source: ParseBaseIbanError::InvalidChecksum,
                } => "the check digits are wrong",
                ParseIbanError::InvalidBban(_) => "the BBAN does not follow its country's format",
                ParseIbanError::UnknownCountry(_) => "the country code is not in the IBAN registry",
            };
            let base = match error {
                ParseIbanError::InvalidBban(base) | ParseIbanError::UnknownCountry(base) => {
                    IbanOutput::parts(&base, base.to_string())
                }
                ParseIbanError::InvalidBaseIban { .. } => IbanOutput::default(),
            };
            IbanOutput {
                valid: false,
                reason: Some(reason),
                ..base
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::testing::{field_of_error, run};
    use serde_json::{json, Value};

    #[test]
    fn luhn_matches_wikipedia() {
        // Wikipedia, "Luhn algorithm": 7992739871 takes check digit 3.
        let payload = run("luhn", json!({ "number": "7992739871" }));
        assert_eq!(
            payload,
            json!({
                "digits": "7992739871", "valid": false,
                "checkDigit": 3, "completed": "79927398713",
            })
        );
        let whole = run("luhn", json!({ "number": "79927398713" }));
        assert_eq!(whole["valid"], true);
        for wrong in ["79927398710", "79927398714", "79927398719"] {
            assert_eq!(run("luhn", json!({ "number": wrong }))["valid"], false);
        }
        // Test card numbers published by card networks, grouped as printed.
        for card in [
            "4111 1111 1111 1111",
            "5555-5555-5555-4444",
            "378282246310005",
        ] {
            assert_eq!(
                run("luhn", json!({ "number": card }))["valid"],
                true,
                "{card}"
            );
        }
        // Past the 28 digits where a u8 sum would overflow.
        let long = "1234567890".repeat(10);
        let first = run("luhn", json!({ "number": long }));
        let completed = first["completed"].as_str().unwrap();
        assert_eq!(run("luhn", json!({ "number": completed }))["valid"], true);
        assert_eq!(run("luhn", json!({ "number": "0" }))["valid"], true);
    }

    #[test]
    fn luhn_refuses_what_is_not_a_number() {
        for bad in ["", " - ", "4111x1111", "１２３", "12.3"] {
            let input = json!({ "number": bad });
            assert_eq!(
                field_of_error("luhn", input).as_deref(),
                Some("number"),
                "{bad}"
            );
        }
        let long = json!({ "number": "1".repeat(257) });
        assert_eq!(field_of_error("luhn", long).as_deref(), Some("number"));
        assert_eq!(
            field_of_error("luhn", json!({ "number": 79927398713u64 })).as_deref(),
            Some("number")
        );
    }

    #[test]
    fn ibans_match_the_published_examples() {
        // Wikipedia, "International Bank Account Number": the UK and German
        // examples.
        let gb = run(
            "iban-validate",
            json!({ "iban": "GB82 WEST 1234 5698 7654 32" }),
        );
        assert_eq!(
            gb,
            json!({
                "valid": true, "reason": null, "countryCode": "GB", "checkDigits": "82",
                "bban": "WEST12345698765432", "bankIdentifier": "WEST",
                "branchIdentifier": "123456",
                "electronic": "GB82WEST12345698765432",
                "print": "GB82 WEST 1234 5698 7654 32",
            })
        );
        let de = run("iban-validate", json!({ "iban": "de89370400440532013000" }));
        assert_eq!(de["valid"], true);
        assert_eq!(de["countryCode"], "DE");
        assert_eq!(de["checkDigits"], "89");
        assert_eq!(de["bban"], "370400440532013000");
        assert_eq!(de["bankIdentifier"], "37040044");
        assert_eq!(de["print"], "DE89 3704 0044 0532 0130 00");
        // Spacing other than groups of four.
        let spaced = run(
            "iban-validate",
            json!({ "iban": " DE89 370400440532013000 " }),
        );
        assert_eq!(spaced["electronic"], "DE89370400440532013000");
    }

    #[test]
    fn invalid_ibans_answer_why() {
        let checksum = run(
            "iban-validate",
            json!({ "iban": "GB83 WEST 1234 5698 7654 32" }),
        );
        assert_eq!(checksum["valid"], false);
        assert_eq!(checksum["reason"], "the check digits are wrong");
        assert_eq!(checksum["countryCode"], Value::Null);
        let format = run("iban-validate", json!({ "iban": "1234" }));
        assert_eq!(format["valid"], false);
        assert!(format["reason"].as_str().unwrap().contains("format"));
        // The crate's own example of a BBAN against its country's format.
        let bban = run(
            "iban-validate",
            json!({ "iban": "AL84212110090000AB023569874" }),
        );
        assert_eq!(bban["valid"], false);
        assert_eq!(
            bban["reason"],
            "the BBAN does not follow its country's format"
        );
        assert_eq!(bban["countryCode"], "AL");
        assert_eq!(bban["bankIdentifier"], Value::Null);
        let long = json!({ "iban": "GB".repeat(33) });
        assert_eq!(
            field_of_error("iban-validate", long).as_deref(),
            Some("iban")
        );
        let other = json!({ "iban": ["GB82WEST12345698765432"] });
        assert_eq!(
            field_of_error("iban-validate", other).as_deref(),
            Some("iban")
        );
    }
}
