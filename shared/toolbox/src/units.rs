//! Unit conversion: length, mass, temperature, volume, speed, data size and
//! duration.
//!
//! Every unit is an exact definition relative to its dimension's base unit,
//! as NIST SP 811 (2008), Appendix B, and NIST Handbook 44, Appendix C, give
//! them (e.g. 1 mile = 1609.344 m, 1 pound = 0.45359237 kg, 1 US gallon =
//! 231 in³ = 3.785411784 L, all exact). Binary prefixes (KiB, MiB, ...) are
//! IEC 80000-13's; the year is the Julian year of 365.25 days (IAU), and the
//! light-year and astronomical unit are the IAU's (2012) exact values.

use crate::{tool, Tool, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub static TOOLS: &[Tool] = &[tool! {
    slug: "convert", name: "Unit converter", category: "units",
    tags: ["length", "mass", "weight", "temperature", "volume", "speed", "data", "bytes", "duration", "metric", "imperial"],
    method: Get, path: "/api/convert/{conversion}",
    description: "Converts a value between units of length, mass, temperature, volume, speed, data size or duration, named as `from-to-to` (e.g. `kilometers-to-miles`), with exact NIST SP 811 definitions.",
    run: convert, example: { "conversion": "kilometers-to-miles", "value": 42 },
    cost: Light,
}];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dimension {
    Length,
    Mass,
    Temperature,
    Volume,
    Speed,
    Data,
    Duration,
}

impl Dimension {
    fn name(self) -> &'static str {
        match self {
            Dimension::Length => "length",
            Dimension::Mass => "mass",
            Dimension::Temperature => "temperature",
            Dimension::Volume => "volume",
            Dimension::Speed => "speed",
            Dimension::Data => "data size",
            Dimension::Duration => "duration",
        }
    }
}

/// One unit: a value `x` in it is `(x - zero) * num / den` of its
/// dimension's base unit. Only temperatures have a `zero`; the factor is a
/// ratio so that definitions such as 5/9 K or 1000/3600 m/s stay exact.
struct Unit {
    /// The canonical name first, then every other accepted spelling
    /// (lower-case, words joined by `-`).
    names: &'static [&'static str],
    dimension: Dimension,
    num: f64,
    den: f64,
    zero: f64,
}

const fn unit(dimension: Dimension, names: &'static [&'static str], factor: f64) -> Unit {
    Unit {
        names,
        dimension,
        num: factor,
        den: 1.0,
        zero: 0.0,
    }
}

const fn ratio(dimension: Dimension, names: &'static [&'static str], num: f64, den: f64) -> Unit {
    Unit {
        names,
        dimension,
        num,
        den,
        zero: 0.0,
    }
}

const fn temperature(names: &'static [&'static str], num: f64, den: f64, zero: f64) -> Unit {
    Unit {
        names,
        dimension: Dimension::Temperature,
        num,
        den,
        zero,
    }
}

use Dimension::{Data, Duration, Length, Mass, Speed, Volume};

/// The definitions (NIST SP 811 Appendix B unless noted). Bases: metre,
/// kilogram, degree Celsius, cubic metre, metre per second, byte, second.
static UNITS: &[Unit] = &[
    // Length, in metres.
    unit(Length, &["meters", "meter", "metres", "metre", "m"], 1.0),
    unit(
        Length,
        &["kilometers", "kilometer", "kilometres", "kilometre", "km"],
        1e3,
    ),
    unit(
        Length,
        &[
            "centimeters",
            "centimeter",
            "centimetres",
            "centimetre",
            "cm",
        ],
        1e-2,
    ),
    unit(
        Length,
        &[
            "millimeters",
            "millimeter",
            "millimetres",
            "millimetre",
            "mm",
        ],
        1e-3,
    ),
    unit(
        Length,
        &[
            "micrometers",
            "micrometer",
            "micrometres",
            "micrometre",
            "microns",
            "micron",
            "um",
            "µm",
        ],
        1e-6,
    ),
    unit(
        Length,
        &["nanometers", "nanometer", "nanometres", "nanometre", "nm"],
        1e-9,
    ),
    unit(Length, &["miles", "mile", "mi"], 1609.344),
    unit(Length, &["yards", "yard", "yd", "yds"], 0.9144),
    unit(Length, &["feet", "foot", "ft"], 0.3048),
    unit(Length, &["inches", "inch", "in"], 0.0254),
    unit(Length, &["nautical-miles", "nautical-mile", "nmi"], 1852.0),
    // IAU 2012 Resolution B2.
    unit(
        Length,
        &["astronomical-units", "astronomical-unit", "au"],
        149_597_870_700.0,
    ),
    // A Julian year of light travel: 365.25 × 86400 s × 299792458 m/s.
    unit(
        Length,
        &["light-years", "light-year", "ly"],
        9_460_730_472_580_800.0,
    ),
    // Mass, in kilograms.
    unit(Mass, &["kilograms", "kilogram", "kg", "kilos", "kilo"], 1.0),
    unit(Mass, &["grams", "gram", "g"], 1e-3),
    unit(Mass, &["milligrams", "milligram", "mg"], 1e-6),
    unit(Mass, &["micrograms", "microgram", "ug", "µg", "mcg"], 1e-9),
    unit(
        Mass,
        &["tonnes", "tonne", "metric-tons", "metric-ton", "t"],
        1e3,
    ),
    unit(Mass, &["pounds", "pound", "lb", "lbs"], 0.453_592_37),
    // 1/16 lb.
    unit(Mass, &["ounces", "ounce", "oz"], 0.028_349_523_125),
    // 14 lb.
    unit(Mass, &["stones", "stone", "st"], 6.350_293_18),
    // 2000 lb.
    unit(
        Mass,
        &["short-tons", "short-ton", "us-tons", "us-ton"],
        907.184_74,
    ),
    // 2240 lb.
    unit(
        Mass,
        &["long-tons", "long-ton", "uk-tons", "uk-ton"],
        1_016.046_908_8,
    ),
    unit(Mass, &["troy-ounces", "troy-ounce", "ozt"], 0.031_103_476_8),
    unit(Mass, &["grains", "grain", "gr"], 0.000_064_798_91),
    unit(Mass, &["carats", "carat", "ct"], 0.0002),
    // Temperature, in degrees Celsius: °C = K − 273.15, °F = 9/5 °C + 32
    // (NIST SP 811 B.9), °R = 9/5 K.
    temperature(
        &[
            "celsius",
            "c",
            "degrees-celsius",
            "degree-celsius",
            "degc",
            "°c",
            "centigrade",
        ],
        1.0,
        1.0,
        0.0,
    ),
    temperature(
        &[
            "fahrenheit",
            "f",
            "degrees-fahrenheit",
            "degree-fahrenheit",
            "degf",
            "°f",
        ],
        5.0,
        9.0,
        32.0,
    ),
    temperature(&["kelvin", "k", "kelvins"], 1.0, 1.0, 273.15),
    temperature(
        &["rankine", "r", "degrees-rankine", "degree-rankine", "°r"],
        5.0,
        9.0,
        491.67,
    ),
    // Volume, in cubic metres.
    unit(
        Volume,
        &[
            "cubic-meters",
            "cubic-meter",
            "cubic-metres",
            "cubic-metre",
            "m3",
            "m³",
        ],
        1.0,
    ),
    unit(Volume, &["liters", "liter", "litres", "litre", "l"], 1e-3),
    unit(
        Volume,
        &[
            "milliliters",
            "milliliter",
            "millilitres",
            "millilitre",
            "ml",
        ],
        1e-6,
    ),
    unit(
        Volume,
        &[
            "cubic-centimeters",
            "cubic-centimeter",
            "cubic-centimetres",
            "cubic-centimetre",
            "cm3",
            "cc",
        ],
        1e-6,
    ),
    // US liquid measures: 231 in³ to the gallon (NIST HB 44 Appendix C).
    unit(
        Volume,
        &["gallons", "gallon", "gal", "us-gallons", "us-gallon"],
        3.785_411_784e-3,
    ),
    unit(
        Volume,
        &["quarts", "quart", "qt", "us-quarts", "us-quart"],
        0.946_352_946e-3,
    ),
    unit(
        Volume,
        &["pints", "pint", "pt", "us-pints", "us-pint"],
        0.473_176_473e-3,
    ),
    unit(
        Volume,
        &["cups", "cup", "us-cups", "us-cup"],
        236.588_236_5e-6,
    ),
    unit(
        Volume,
        &[
            "fluid-ounces",
            "fluid-ounce",
            "fl-oz",
            "floz",
            "us-fluid-ounces",
            "us-fluid-ounce",
        ],
        29.573_529_562_5e-6,
    ),
    unit(
        Volume,
        &["tablespoons", "tablespoon", "tbsp"],
        14.786_764_781_25e-6,
    ),
    unit(
        Volume,
        &["teaspoons", "teaspoon", "tsp"],
        4.928_921_593_75e-6,
    ),
    // Imperial measures: 4.54609 L to the gallon.
    unit(
        Volume,
        &[
            "imperial-gallons",
            "imperial-gallon",
            "uk-gallons",
            "uk-gallon",
            "imp-gal",
        ],
        4.546_09e-3,
    ),
    unit(
        Volume,
        &[
            "imperial-pints",
            "imperial-pint",
            "uk-pints",
            "uk-pint",
            "imp-pt",
        ],
        0.568_261_25e-3,
    ),
    unit(
        Volume,
        &[
            "imperial-fluid-ounces",
            "imperial-fluid-ounce",
            "uk-fluid-ounces",
            "uk-fluid-ounce",
            "imp-fl-oz",
        ],
        28.413_062_5e-6,
    ),
    unit(
        Volume,
        &["cubic-inches", "cubic-inch", "in3", "cu-in"],
        16.387_064e-6,
    ),
    unit(
        Volume,
        &["cubic-feet", "cubic-foot", "ft3", "cu-ft"],
        0.028_316_846_592,
    ),
    unit(
        Volume,
        &["cubic-yards", "cubic-yard", "yd3", "cu-yd"],
        0.764_554_857_984,
    ),
    // Speed, in metres per second.
    unit(
        Speed,
        &[
            "meters-per-second",
            "meter-per-second",
            "metres-per-second",
            "metre-per-second",
            "m/s",
        ],
        1.0,
    ),
    ratio(
        Speed,
        &[
            "kilometers-per-hour",
            "kilometer-per-hour",
            "kilometres-per-hour",
            "kilometre-per-hour",
            "kph",
            "kmh",
            "km/h",
        ],
        1000.0,
        3600.0,
    ),
    ratio(
        Speed,
        &["miles-per-hour", "mile-per-hour", "mph"],
        1609.344,
        3600.0,
    ),
    ratio(Speed, &["knots", "knot", "kn", "kt"], 1852.0, 3600.0),
    unit(
        Speed,
        &["feet-per-second", "foot-per-second", "fps", "ft/s"],
        0.3048,
    ),
    // Data size, in bytes: decimal prefixes are powers of 1000, binary
    // (IEC 80000-13) powers of 1024. `kb`, `mb`, ... are bytes; bits are
    // spelled `kbit`, `mbit`, ...
    unit(Data, &["bytes", "byte", "octets", "octet"], 1.0),
    ratio(Data, &["bits", "bit"], 1.0, 8.0),
    unit(Data, &["kilobytes", "kilobyte", "kb"], 1e3),
    unit(Data, &["megabytes", "megabyte", "mb"], 1e6),
    unit(Data, &["gigabytes", "gigabyte", "gb"], 1e9),
    unit(Data, &["terabytes", "terabyte", "tb"], 1e12),
    unit(Data, &["petabytes", "petabyte", "pb"], 1e15),
    unit(Data, &["exabytes", "exabyte", "eb"], 1e18),
    unit(Data, &["kibibytes", "kibibyte", "kib"], 1024.0),
    unit(Data, &["mebibytes", "mebibyte", "mib"], 1_048_576.0),
    unit(Data, &["gibibytes", "gibibyte", "gib"], 1_073_741_824.0),
    unit(Data, &["tebibytes", "tebibyte", "tib"], 1_099_511_627_776.0),
    unit(
        Data,
        &["pebibytes", "pebibyte", "pib"],
        1_125_899_906_842_624.0,
    ),
    unit(
        Data,
        &["exbibytes", "exbibyte", "eib"],
        1_152_921_504_606_846_976.0,
    ),
    ratio(Data, &["kilobits", "kilobit", "kbit"], 1e3, 8.0),
    ratio(Data, &["megabits", "megabit", "mbit"], 1e6, 8.0),
    ratio(Data, &["gigabits", "gigabit", "gbit"], 1e9, 8.0),
    ratio(Data, &["terabits", "terabit", "tbit"], 1e12, 8.0),
    ratio(Data, &["kibibits", "kibibit", "kibit"], 1024.0, 8.0),
    ratio(Data, &["mebibits", "mebibit", "mibit"], 1_048_576.0, 8.0),
    ratio(
        Data,
        &["gibibits", "gibibit", "gibit"],
        1_073_741_824.0,
        8.0,
    ),
    // Duration, in seconds.
    unit(Duration, &["nanoseconds", "nanosecond", "ns"], 1e-9),
    unit(Duration, &["microseconds", "microsecond", "us", "µs"], 1e-6),
    unit(Duration, &["milliseconds", "millisecond", "ms"], 1e-3),
    unit(Duration, &["seconds", "second", "s", "sec", "secs"], 1.0),
    unit(Duration, &["minutes", "minute", "min", "mins"], 60.0),
    unit(Duration, &["hours", "hour", "h", "hr", "hrs"], 3600.0),
    unit(Duration, &["days", "day", "d"], 86_400.0),
    unit(Duration, &["weeks", "week", "wk", "wks", "w"], 604_800.0),
    // The Julian year, 365.25 days (IAU).
    unit(Duration, &["years", "year", "yr", "yrs", "y"], 31_557_600.0),
];

impl Unit {
    fn name(&self) -> &'static str {
        self.names[0]
    }

    fn to_base(&self, value: f64) -> f64 {
        (value - self.zero) * self.num / self.den
    }

    fn of_base(&self, base: f64) -> f64 {
        base * self.den / self.num + self.zero
    }
}

/// The unit spelled `name` (any case; spaces and `_` read as `-`).
fn lookup(name: &str) -> Result<&'static Unit, ToolError> {
    let key: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '_' { '-' } else { c })
        .collect();
    UNITS
        .iter()
        .find(|unit| unit.names.contains(&key.as_str()))
        .ok_or_else(|| {
            ToolError::field(
                "conversion",
                format!("unknown unit `{name}`; known units: {}", all_units()),
            )
        })
}

/// The canonical names of the units of `dimension`.
fn units_of(dimension: Dimension) -> String {
    UNITS
        .iter()
        .filter(|unit| unit.dimension == dimension)
        .map(Unit::name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn all_units() -> String {
    [
        Length,
        Mass,
        Dimension::Temperature,
        Volume,
        Speed,
        Data,
        Duration,
    ]
    .iter()
    .map(|dimension| format!("{} ({})", dimension.name(), units_of(*dimension)))
    .collect::<Vec<_>>()
    .join("; ")
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConvertInput {
    /// The conversion, `<from>-to-<to>`, e.g. `kilometers-to-miles`, `c-to-f`,
    /// `mib-to-mb`. Units are matched case-insensitively, singular, plural or
    /// abbreviated (`km`, `mi`, `kg`, `lb`, `c`, `f`, `k`, `mph`, `kph`, `mb`,
    /// `mib`, `s`, `ms`, `h`, ...); `m` is metres, `kb`/`mb`/... are bytes
    /// (bits are `kbit`, `mbit`, ...), `gallon`/`pint`/... are US measures
    /// (`imperial-gallon` for the UK's), and a year is 365.25 days.
    #[schemars(length(min = 4, max = 100))]
    pub conversion: String,
    /// The value to convert, in the `from` unit.
    pub value: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConvertOutput {
    /// The canonical name of the unit converted from.
    pub from: &'static str,
    /// The canonical name of the unit converted to.
    pub to: &'static str,
    pub value: f64,
    pub result: f64,
}

fn convert(input: ConvertInput) -> Result<ConvertOutput, ToolError> {
    let spec = input
        .conversion
        .trim()
        .to_lowercase()
        .replace([' ', '_'], "-");
    let (from, to) = spec.split_once("-to-").ok_or_else(|| {
        ToolError::field(
            "conversion",
            "expected `<from>-to-<to>`, e.g. `kilometers-to-miles`",
        )
    })?;
    let (from, to) = (lookup(from)?, lookup(to)?);
    if from.dimension != to.dimension {
        return Err(ToolError::field(
            "conversion",
            format!(
                "cannot convert {} ({}) to {} ({}); {} units: {}",
                from.dimension.name(),
                from.name(),
                to.dimension.name(),
                to.name(),
                from.dimension.name(),
                units_of(from.dimension),
            ),
        ));
    }
    let result = if std::ptr::eq(from, to) {
        input.value
    } else {
        to.of_base(from.to_base(input.value))
    };
    if !result.is_finite() {
        return Err(ToolError::field(
            "value",
            "the result is too large for a 64-bit float",
        ));
    }
    Ok(ConvertOutput {
        from: from.name(),
        to: to.name(),
        value: input.value,
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::UNITS;
    use crate::find;
    use serde_json::{json, Value};
    use std::collections::HashSet;

    fn convert(conversion: &str, value: f64) -> f64 {
        let output = find("convert")
            .unwrap()
            .run(json!({ "conversion": conversion, "value": value }))
            .unwrap();
        output["result"].as_f64().unwrap()
    }

    fn close(actual: f64, expected: f64) {
        let tolerance = 1e-12 * expected.abs().max(1.0);
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not {expected}"
        );
    }

    fn refused(input: Value) -> crate::ToolError {
        find("convert").unwrap().run(input).unwrap_err()
    }

    #[test]
    fn every_spelling_names_one_unit() {
        let mut seen = HashSet::new();
        for unit in UNITS {
            for name in unit.names {
                assert_eq!(*name, name.to_lowercase(), "{name}");
                assert!(!name.contains("-to-"), "{name}");
                assert!(seen.insert(*name), "{name} twice");
            }
        }
    }

    #[test]
    fn the_public_example_answers() {
        let output = find("convert")
            .unwrap()
            .run(json!({ "conversion": "kilometers-to-miles", "value": 42 }))
            .unwrap();
        assert_eq!(output["from"], "kilometers");
        assert_eq!(output["to"], "miles");
        assert_eq!(output["value"], 42.0);
        // 42 000 m / 1609.344 m (NIST SP 811 B.9: the mile is exactly 1609.344 m).
        close(output["result"].as_f64().unwrap(), 26.097590073968);
        assert_eq!(output["result"].as_f64().unwrap(), 42_000.0 / 1609.344);
    }

    #[test]
    fn exact_definitions_hold() {
        // NIST SP 811 Appendix B / NIST HB 44 Appendix C, exact values.
        close(convert("mi-to-m", 1.0), 1609.344);
        close(convert("inch-to-cm", 1.0), 2.54);
        close(convert("ft-to-in", 1.0), 12.0);
        close(convert("yard-to-feet", 1.0), 3.0);
        close(convert("nautical-mile-to-meters", 1.0), 1852.0);
        close(convert("lb-to-kg", 1.0), 0.45359237);
        close(convert("lb-to-oz", 1.0), 16.0);
        close(convert("stone-to-pounds", 1.0), 14.0);
        close(convert("kg-to-lb", 1.0), 2.204_622_621_848_776);
        close(convert("gallons-to-liters", 1.0), 3.785411784);
        close(convert("gallon-to-cubic-inches", 1.0), 231.0);
        close(convert("gallon-to-fl-oz", 1.0), 128.0);
        close(convert("cup-to-tbsp", 1.0), 16.0);
        close(convert("tbsp-to-tsp", 1.0), 3.0);
        close(
            convert("imperial-gallon-to-imperial-fluid-ounces", 1.0),
            160.0,
        );
        close(convert("imperial-gallon-to-l", 1.0), 4.54609);
        close(convert("cubic-feet-to-cubic-inches", 1.0), 1728.0);
        close(convert("mph-to-kph", 60.0), 96.56064);
        close(convert("knots-to-m/s", 1.0), 1852.0 / 3600.0);
        close(convert("kph-to-m/s", 36.0), 10.0);
        close(convert("ly-to-km", 1.0), 9.4607304725808e12);
        close(convert("troy-ounce-to-grams", 1.0), 31.1034768);
    }

    #[test]
    fn temperatures_are_affine() {
        // NIST SP 811 B.9: t/°C = T/K − 273.15; t/°F = 1.8 t/°C + 32.
        assert_eq!(convert("celsius-to-fahrenheit", 100.0), 212.0);
        assert_eq!(convert("c-to-f", 0.0), 32.0);
        assert_eq!(convert("f-to-c", 212.0), 100.0);
        assert_eq!(convert("F-to-C", -40.0), -40.0);
        close(convert("c-to-k", 0.0), 273.15);
        close(convert("k-to-c", 0.0), -273.15);
        close(convert("kelvin-to-fahrenheit", 0.0), -459.67);
        close(convert("fahrenheit-to-kelvin", 98.6), 310.15);
        close(convert("rankine-to-kelvin", 491.67), 273.15);
        close(convert("degrees-fahrenheit-to-rankine", 0.0), 459.67);
    }

    #[test]
    fn data_sizes_tell_decimal_from_binary() {
        assert_eq!(convert("kib-to-bytes", 1.0), 1024.0);
        assert_eq!(convert("kilobytes-to-bytes", 1.0), 1000.0);
        assert_eq!(convert("gib-to-mib", 1.0), 1024.0);
        assert_eq!(convert("MiB-to-MB", 1.0), 1.048576);
        assert_eq!(convert("bytes-to-bits", 1.0), 8.0);
        assert_eq!(convert("mbit-to-kb", 8.0), 1000.0);
        assert_eq!(convert("eib-to-bytes", 1.0), 1_152_921_504_606_846_976.0);
        close(convert("tb-to-tib", 1.0), 0.909_494_701_772_928_2);
    }

    #[test]
    fn durations_use_the_julian_year() {
        assert_eq!(convert("hours-to-seconds", 1.0), 3600.0);
        assert_eq!(convert("h-to-min", 1.5), 90.0);
        assert_eq!(convert("weeks-to-days", 2.0), 14.0);
        assert_eq!(convert("year-to-days", 1.0), 365.25);
        close(convert("ms-to-s", 1500.0), 1.5);
        close(convert("s-to-ns", 1.0), 1e9);
    }

    #[test]
    fn spellings_are_forgiving() {
        for conversion in [
            "KM-to-MI",
            "kilometer-to-mile",
            "Kilometres_to_Miles",
            "kilometers to miles",
            " km-to-miles ",
        ] {
            close(convert(conversion, 42.0), 26.097590073968);
        }
        let output = find("convert")
            .unwrap()
            .run(json!({ "conversion": "lbs-to-KG", "value": 2 }))
            .unwrap();
        assert_eq!(output["from"], "pounds");
        assert_eq!(output["to"], "kilograms");
    }

    #[test]
    fn refusals_name_the_field() {
        let across = refused(json!({ "conversion": "meters-to-kilograms", "value": 1 }));
        assert_eq!(across.field.as_deref(), Some("conversion"));
        assert!(
            across.message.contains("length units"),
            "{}",
            across.message
        );
        assert!(across.message.contains("miles"), "{}", across.message);
        let unknown = refused(json!({ "conversion": "furlongs-to-meters", "value": 1 }));
        assert_eq!(unknown.field.as_deref(), Some("conversion"));
        assert!(unknown.message.contains("furlongs"), "{}", unknown.message);
        let shape = refused(json!({ "conversion": "meters", "value": 1 }));
        assert_eq!(shape.field.as_deref(), Some("conversion"));
        let long = refused(json!({ "conversion": "m".repeat(101), "value": 1 }));
        assert_eq!(long.field.as_deref(), Some("conversion"));
        let not_a_number = refused(json!({ "conversion": "m-to-km", "value": "lots" }));
        assert_eq!(not_a_number.field.as_deref(), Some("value"));
        let huge = refused(json!({ "conversion": "eib-to-bits", "value": 1e300 }));
        assert_eq!(huge.field.as_deref(), Some("value"));
    }
}
