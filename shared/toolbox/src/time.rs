//! Time: Unix timestamps and ISO 8601 / RFC 3339, date arithmetic,
//! differences, ages and cron schedules.
//!
//! Times are UTC unless a time zone (an IANA name such as `Europe/Berlin`,
//! from chrono-tz's copy of the tz database) is named. A wall clock time
//! without an offset reads, in a named zone, as RFC 5545 (3.3.5) says: a
//! time that a DST change repeats is the first of the two instants, and one
//! that a DST change skips is read with the offset in force before the gap
//! (so 02:30 on a spring-forward night in New York is 03:30 EDT). The clock
//! is read only by `age` (today, by default) and `cron-next` (now, by
//! default).

use crate::{tool, Tool, ToolError};
use chrono::{
    DateTime, Datelike, Days, FixedOffset, LocalResult, Months, NaiveDate, NaiveDateTime, Offset,
    SecondsFormat, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

pub static TOOLS: &[Tool] = &[
    tool! {
        slug: "unix-to-iso", name: "Unix time to ISO 8601", category: "time",
        tags: ["unix", "epoch", "timestamp", "iso8601", "rfc3339", "timezone"],
        method: Get, path: "/api/unix-to-iso",
        description: "Converts a Unix timestamp (seconds or milliseconds) to an RFC 3339 / ISO 8601 date-time, in UTC and in an IANA time zone you name.",
        run: unix_to_iso, example: { "timestamp": 1_700_000_000, "timeZone": "Europe/Berlin" },
        cost: Light,
    },
    tool! {
        slug: "iso-to-unix", name: "ISO 8601 to Unix time", category: "time",
        tags: ["unix", "epoch", "timestamp", "iso8601", "rfc3339", "timezone"],
        method: Get, path: "/api/iso-to-unix",
        description: "Converts an RFC 3339 / ISO 8601 date-time (with an offset, or a wall clock time in UTC or an IANA time zone you name) to Unix seconds and milliseconds.",
        run: iso_to_unix, example: { "datetime": "2023-11-14T22:13:20Z" },
        cost: Light,
    },
    tool! {
        slug: "time-add", name: "Add to a date-time", category: "time",
        tags: ["duration", "iso8601", "date", "arithmetic", "timezone"],
        method: Post, path: "/api/time-add",
        description: "Adds an ISO 8601 duration (e.g. `P1M`, `-PT90M`, `P1DT2H`) or a signed number of seconds to a date-time: years, months, weeks and days move the calendar (in the time zone, if you name one), hours, minutes and seconds the clock.",
        run: time_add, example: { "datetime": "2024-01-31T12:00:00Z", "duration": "P1M2DT3H" },
    },
    tool! {
        slug: "time-diff", name: "Time between two date-times", category: "time",
        tags: ["duration", "difference", "iso8601", "elapsed"],
        method: Post, path: "/api/time-diff",
        description: "The time from one date-time to another, in seconds, minutes, hours and days, and as an exact ISO 8601 duration (days of 24 hours); negative when `to` is before `from`.",
        run: time_diff, example: { "from": "2024-01-01T00:00:00Z", "to": "2024-03-01T12:30:00Z" },
    },
    tool! {
        slug: "age", name: "Age", category: "time",
        tags: ["birthday", "date", "years", "calendar"],
        method: Get, path: "/api/age",
        description: "Age on a date (default today, UTC) from a birth date: whole years, months and days, and total days. A 29 February birthday is reached on 1 March in common years.",
        run: age, example: { "birthDate": "2000-02-29", "on": "2024-03-01" },
        cost: Light,
    },
    tool! {
        slug: "cron-next", name: "Next cron runs", category: "time",
        tags: ["cron", "schedule", "crontab", "timezone"],
        method: Post, path: "/api/cron-next",
        description: "The next run times (up to 100) of a 5-field cron expression, or 6 with seconds first, after a date-time (default now), in UTC or an IANA time zone.",
        run: cron_next, example: { "expression": "0 9 * * MON-FRI", "from": "2024-01-01T00:00:00Z", "count": 3, "timeZone": "America/New_York" },
    },
];

/// The longest date-time text taken.
const DATETIME_LEN: u32 = 64;
/// The longest time zone name taken.
const ZONE_LEN: u32 = 64;

/// The time zone named `name`, in field `field`.
fn parse_zone(field: &str, name: &str) -> Result<Tz, ToolError> {
    name.trim().parse::<Tz>().map_err(|_| {
        ToolError::field(
            field,
            format!(
                "unknown IANA time zone `{name}` (e.g. `UTC`, `Europe/Berlin`, `America/New_York`)"
            ),
        )
    })
}

fn zone_of(name: Option<&str>) -> Result<Option<Tz>, ToolError> {
    name.map(|name| parse_zone("timeZone", name)).transpose()
}

/// A date-time as written: with an offset, or a wall clock time.
enum Written {
    Offset(DateTime<FixedOffset>),
    Wall(NaiveDateTime),
}

/// Formats with an offset (`%#z` takes `Z`, `+01`, `+0100`, `+01:00`).
const OFFSET_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%d %H:%M%#z",
    "%Y%m%dT%H%M%S%.f%#z",
];

/// Formats without one.
const WALL_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y%m%dT%H%M%S%.f",
];

/// Reads an RFC 3339 or ISO 8601 date-time (extended or basic format,
/// `T` or a space between date and time, seconds and fraction optional, a
/// date alone meaning its midnight), in field `field`.
fn parse_written(field: &str, text: &str) -> Result<Written, ToolError> {
    let text = text.trim();
    if let Ok(datetime) = DateTime::parse_from_rfc3339(text) {
        return Ok(Written::Offset(datetime));
    }
    for format in OFFSET_FORMATS {
        if let Ok(datetime) = DateTime::parse_from_str(text, format) {
            return Ok(Written::Offset(datetime));
        }
    }
    for format in WALL_FORMATS {
        if let Ok(datetime) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(Written::Wall(datetime));
        }
    }
    for format in ["%Y-%m-%d", "%Y%m%d"] {
        if let Ok(date) = NaiveDate::parse_from_str(text, format) {
            return Ok(Written::Wall(date.and_time(chrono::NaiveTime::MIN)));
        }
    }
    Err(ToolError::field(
        field,
        format!("`{text}` is not an RFC 3339 / ISO 8601 date-time (e.g. `2024-03-10T02:30:00Z`, `2024-03-10T02:30:00-05:00`, `2024-03-10 02:30`, `2024-03-10`)"),
    ))
}

/// The instant a wall clock time in `zone` stands for: the earlier of two
/// repeated ones, and past a gap, as read with the offset before it
/// (RFC 5545 3.3.5).
fn resolve<Z: TimeZone>(zone: &Z, wall: NaiveDateTime) -> Option<DateTime<Z>> {
    match zone.from_local_datetime(&wall) {
        LocalResult::Single(datetime) => Some(datetime),
        LocalResult::Ambiguous(earlier, _) => Some(earlier),
        LocalResult::None => {
            // A day before, the offset in force is the one before the gap.
            let before = zone
                .offset_from_utc_datetime(&wall.checked_sub_days(Days::new(1))?)
                .fix();
            let utc =
                wall.checked_sub_signed(TimeDelta::seconds(i64::from(before.local_minus_utc())))?;
            Some(zone.from_utc_datetime(&utc))
        }
    }
}

/// The instant `text` in field `field` stands for, a wall clock time read in
/// `zone` (UTC if none).
fn instant(field: &str, text: &str, zone: Option<Tz>) -> Result<DateTime<Utc>, ToolError> {
    match parse_written(field, text)? {
        Written::Offset(datetime) => Ok(datetime.to_utc()),
        Written::Wall(wall) => match zone {
            None => Ok(wall.and_utc()),
            Some(zone) => resolve(&zone, wall)
                .map(|datetime| datetime.to_utc())
                .ok_or_else(|| ToolError::field(field, "out of range")),
        },
    }
}

fn rfc3339<Z: TimeZone>(datetime: &DateTime<Z>) -> String
where
    Z::Offset: std::fmt::Display,
{
    datetime.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The unit of a Unix timestamp.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TimestampUnit {
    #[default]
    Seconds,
    Milliseconds,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UnixToIsoInput {
    /// Time since 1970-01-01T00:00:00Z, leap seconds not counted; may be
    /// negative or fractional (kept to the microsecond).
    pub timestamp: f64,
    /// The unit of `timestamp`: `seconds` (default) or `milliseconds`.
    #[serde(default)]
    pub unit: TimestampUnit,
    /// An IANA time zone to show the time in as well (e.g. `Europe/Berlin`).
    #[schemars(length(max = ZONE_LEN))]
    pub time_zone: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnixToIsoOutput {
    /// The time in `timeZone`, RFC 3339.
    pub iso: String,
    /// The time in UTC, RFC 3339 with `Z`.
    pub utc: String,
    /// The zone of `iso` (`UTC` unless one was named).
    pub time_zone: String,
    /// The zone's UTC offset then, `+01:00`.
    pub offset: String,
}

/// The instant `value` units after the epoch, to the microsecond.
fn from_timestamp(value: f64, unit: TimestampUnit) -> Option<DateTime<Utc>> {
    let micros_per_unit: i128 = match unit {
        TimestampUnit::Seconds => 1_000_000,
        TimestampUnit::Milliseconds => 1_000,
    };
    let whole = value.trunc();
    // Far past chrono's range (±262 143 years) either way.
    if whole.abs() > 1e17 {
        return None;
    }
    let fraction = ((value - whole) * micros_per_unit as f64).round() as i128;
    let micros = whole as i128 * micros_per_unit + fraction;
    let seconds = i64::try_from(micros.div_euclid(1_000_000)).ok()?;
    let nanos = u32::try_from(micros.rem_euclid(1_000_000) * 1_000).ok()?;
    DateTime::from_timestamp(seconds, nanos)
}

fn unix_to_iso(input: UnixToIsoInput) -> Result<UnixToIsoOutput, ToolError> {
    let zone = zone_of(input.time_zone.as_deref())?.unwrap_or(Tz::UTC);
    let utc = from_timestamp(input.timestamp, input.unit)
        .ok_or_else(|| ToolError::field("timestamp", "outside the years -262143 to 262142"))?;
    let local = utc.with_timezone(&zone);
    Ok(UnixToIsoOutput {
        iso: rfc3339(&local),
        utc: rfc3339(&utc),
        time_zone: zone.name().to_string(),
        offset: local.offset().fix().to_string(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IsoToUnixInput {
    /// An RFC 3339 / ISO 8601 date-time: `2023-11-14T22:13:20Z`,
    /// `2023-11-14T23:13:20+01:00`, or without an offset (`2023-11-14 22:13`,
    /// `2023-11-14`), then read in `timeZone`.
    #[schemars(length(max = DATETIME_LEN))]
    pub datetime: String,
    /// The IANA time zone a `datetime` without an offset is read in
    /// (default UTC); ignored when it has one.
    #[schemars(length(max = ZONE_LEN))]
    pub time_zone: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IsoToUnixOutput {
    /// Whole seconds since the epoch (rounded down).
    pub seconds: i64,
    /// Whole milliseconds since the epoch (rounded down).
    pub milliseconds: i64,
    /// The same instant in UTC, RFC 3339.
    pub utc: String,
}

fn iso_to_unix(input: IsoToUnixInput) -> Result<IsoToUnixOutput, ToolError> {
    let zone = zone_of(input.time_zone.as_deref())?;
    let utc = instant("datetime", &input.datetime, zone)?;
    Ok(IsoToUnixOutput {
        seconds: utc.timestamp(),
        milliseconds: utc.timestamp_millis(),
        utc: rfc3339(&utc),
    })
}

/// A duration to add.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DurationInput {
    /// Signed seconds, fractions kept to the nanosecond.
    Seconds(f64),
    /// An ISO 8601 duration, `[-]PnYnMnWnDTnHnMnS` (e.g. `P1M`, `P2W`,
    /// `PT1.5S`, `-P1DT12H`); only seconds may have a fraction.
    Iso(#[schemars(length(max = 64))] String),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeAddInput {
    /// The date-time to start from (RFC 3339 / ISO 8601; without an offset,
    /// read in `timeZone` or UTC).
    #[schemars(length(max = DATETIME_LEN))]
    pub datetime: String,
    /// What to add: an ISO 8601 duration string such as `P1DT2H` (years,
    /// months, weeks and days are calendar steps: `2024-01-31` + `P1M` is
    /// `2024-02-29`; hours, minutes and seconds are exact), prefixed with `-`
    /// to subtract; or a number of seconds, negative to subtract.
    pub duration: DurationInput,
    /// The IANA time zone whose calendar the days and months step through
    /// and the result is shown in (default: the offset `datetime` was
    /// written with, or UTC).
    #[schemars(length(max = ZONE_LEN))]
    pub time_zone: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeAddOutput {
    /// The result, RFC 3339, in the zone worked in.
    pub result: String,
    /// The result in UTC, RFC 3339.
    pub utc: String,
    /// The result in Unix seconds (rounded down).
    pub unix: i64,
}

/// A parsed duration: calendar months and days, then exact time.
struct Step {
    months: i64,
    days: i64,
    exact: TimeDelta,
}

fn iso_duration_pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        Regex::new(
            r"^([+-])?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:[.,](\d{1,9}))?S)?)?$",
        )
        .expect("a valid pattern")
    })
}

fn duration_error(message: impl std::fmt::Display) -> ToolError {
    ToolError::field("duration", message)
}

/// Reads an ISO 8601 duration (ISO 8601-1:2019 5.5.2, with `W` allowed
/// alongside the other designators and a leading sign, as RFC 5545 and
/// many libraries allow).
fn parse_iso_duration(text: &str) -> Result<Step, ToolError> {
    let text = text.trim();
    let shape = "expected an ISO 8601 duration such as `P1Y2M3DT4H5M6.5S`, `P2W` or `-PT30M`";
    let captures = iso_duration_pattern()
        .captures(text)
        .ok_or_else(|| duration_error(shape))?;
    if captures.iter().skip(2).all(|group| group.is_none()) || text.ends_with('T') {
        return Err(duration_error(shape));
    }
    let number = |index: usize| -> Result<i64, ToolError> {
        captures.get(index).map_or(Ok(0), |group| {
            group
                .as_str()
                .parse::<i64>()
                .ok()
                .filter(|value| *value <= 1_000_000_000_000)
                .ok_or_else(|| duration_error("a component is too large"))
        })
    };
    let too_large = || duration_error("too large");
    let (years, months, weeks, days) = (number(2)?, number(3)?, number(4)?, number(5)?);
    let (hours, minutes, seconds) = (number(6)?, number(7)?, number(8)?);
    let months = years
        .checked_mul(12)
        .and_then(|years| years.checked_add(months))
        .ok_or_else(too_large)?;
    let days = weeks
        .checked_mul(7)
        .and_then(|weeks| weeks.checked_add(days))
        .ok_or_else(too_large)?;
    let seconds = hours
        .checked_mul(3600)
        .and_then(|total| total.checked_add(minutes.checked_mul(60)?))
        .and_then(|total| total.checked_add(seconds))
        .ok_or_else(too_large)?;
    let nanos = match captures.get(9) {
        Some(fraction) => {
            let digits = fraction.as_str();
            let value: u32 = digits.parse().map_err(|_| duration_error(shape))?;
            value * 10u32.pow(9 - digits.len() as u32)
        }
        None => 0,
    };
    let exact = TimeDelta::new(seconds, nanos).ok_or_else(too_large)?;
    let negative = captures.get(1).is_some_and(|sign| sign.as_str() == "-");
    Ok(if negative {
        Step {
            months: -months,
            days: -days,
            exact: -exact,
        }
    } else {
        Step {
            months,
            days,
            exact,
        }
    })
}

fn seconds_step(seconds: f64) -> Result<Step, ToolError> {
    let whole = seconds.trunc();
    if whole.abs() > 1e15 {
        return Err(duration_error("too large"));
    }
    let nanos = ((seconds - whole) * 1e9).round() as i64;
    let exact = TimeDelta::try_seconds(whole as i64)
        .and_then(|delta| delta.checked_add(&TimeDelta::nanoseconds(nanos)))
        .ok_or_else(|| duration_error("too large"))?;
    Ok(Step {
        months: 0,
        days: 0,
        exact,
    })
}

/// `start` moved by `step`: months, then days on its zone's calendar, then
/// the exact time.
fn step_from<Z: TimeZone>(start: DateTime<Z>, step: &Step) -> Option<DateTime<Z>> {
    let mut datetime = start;
    if step.months != 0 || step.days != 0 {
        let mut wall = datetime.naive_local();
        let months = Months::new(u32::try_from(step.months.unsigned_abs()).ok()?);
        wall = if step.months >= 0 {
            wall.checked_add_months(months)?
        } else {
            wall.checked_sub_months(months)?
        };
        let days = Days::new(step.days.unsigned_abs());
        wall = if step.days >= 0 {
            wall.checked_add_days(days)?
        } else {
            wall.checked_sub_days(days)?
        };
        datetime = resolve(&datetime.timezone(), wall)?;
    }
    datetime.checked_add_signed(step.exact)
}

fn time_add(input: TimeAddInput) -> Result<TimeAddOutput, ToolError> {
    let zone = zone_of(input.time_zone.as_deref())?;
    let step = match &input.duration {
        DurationInput::Seconds(seconds) => seconds_step(*seconds)?,
        DurationInput::Iso(text) => parse_iso_duration(text)?,
    };
    let out_of_range = || ToolError::field("duration", "the result is out of range");
    let (result, utc) = match (zone, parse_written("datetime", &input.datetime)?) {
        (Some(zone), _) => {
            let start = instant("datetime", &input.datetime, Some(zone))?.with_timezone(&zone);
            let end = step_from(start, &step).ok_or_else(out_of_range)?;
            (rfc3339(&end), end.to_utc())
        }
        (None, Written::Offset(start)) => {
            let end = step_from(start, &step).ok_or_else(out_of_range)?;
            (rfc3339(&end), end.to_utc())
        }
        (None, Written::Wall(wall)) => {
            let end = step_from(wall.and_utc(), &step).ok_or_else(out_of_range)?;
            (rfc3339(&end), end)
        }
    };
    Ok(TimeAddOutput {
        result,
        utc: rfc3339(&utc),
        unix: utc.timestamp(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeDiffInput {
    /// The start (RFC 3339 / ISO 8601; without an offset, read in
    /// `timeZone` or UTC).
    #[schemars(length(max = DATETIME_LEN))]
    pub from: String,
    /// The end, written the same way.
    #[schemars(length(max = DATETIME_LEN))]
    pub to: String,
    /// The IANA time zone date-times without an offset are read in (default
    /// UTC).
    #[schemars(length(max = ZONE_LEN))]
    pub time_zone: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeDiffOutput {
    pub seconds: f64,
    pub minutes: f64,
    pub hours: f64,
    /// Days of 24 hours.
    pub days: f64,
    /// The exact duration in ISO 8601, days of 24 hours (`P1DT2H30M`,
    /// `-PT1.5S`, `PT0S`).
    pub duration: String,
}

/// `delta` as an ISO 8601 duration of days, hours, minutes and seconds.
fn iso_duration(delta: TimeDelta) -> String {
    let sign = if delta < TimeDelta::zero() { "-" } else { "" };
    let delta = delta.abs();
    let total = delta.num_seconds();
    let nanos = delta.subsec_nanos().unsigned_abs();
    let (days, hours, minutes, seconds) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    let mut text = format!("{sign}P");
    if days > 0 {
        text += &format!("{days}D");
    }
    let mut time = String::new();
    if hours > 0 {
        time += &format!("{hours}H");
    }
    if minutes > 0 {
        time += &format!("{minutes}M");
    }
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        time += &format!("{seconds}.{}S", fraction.trim_end_matches('0'));
    } else if seconds > 0 || (days == 0 && time.is_empty()) {
        time += &format!("{seconds}S");
    }
    if !time.is_empty() {
        text += "T";
        text += &time;
    }
    text
}

fn time_diff(input: TimeDiffInput) -> Result<TimeDiffOutput, ToolError> {
    let zone = zone_of(input.time_zone.as_deref())?;
    let from = instant("from", &input.from, zone)?;
    let to = instant("to", &input.to, zone)?;
    let delta = to.signed_duration_since(from);
    let seconds = delta.num_seconds() as f64 + f64::from(delta.subsec_nanos()) / 1e9;
    Ok(TimeDiffOutput {
        seconds,
        minutes: seconds / 60.0,
        hours: seconds / 3600.0,
        days: seconds / 86_400.0,
        duration: iso_duration(delta),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgeInput {
    /// The birth date, `YYYY-MM-DD`.
    #[schemars(length(max = 16))]
    pub birth_date: String,
    /// The date to give the age on, `YYYY-MM-DD` (default today, UTC).
    #[schemars(length(max = 16))]
    pub on: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgeOutput {
    /// Whole years.
    pub years: u32,
    /// Whole months past the last birthday.
    pub months: u32,
    /// Days past the last whole month.
    pub days: i64,
    /// Days since the birth date.
    pub total_days: i64,
    /// The date the age is given on.
    pub on: String,
}

fn parse_date(field: &str, text: &str) -> Result<NaiveDate, ToolError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|error| ToolError::field(field, format!("expected a date `YYYY-MM-DD`: {error}")))
}

fn age(input: AgeInput) -> Result<AgeOutput, ToolError> {
    let birth = parse_date("birthDate", &input.birth_date)?;
    let on = match &input.on {
        Some(on) => parse_date("on", on)?,
        None => Utc::now().date_naive(),
    };
    let after =
        |field: &str| ToolError::field(field, format!("{on} is before the birth date {birth}"));
    let field = if input.on.is_some() {
        "on"
    } else {
        "birthDate"
    };
    // Years as chrono counts them (a birthday is reached when the month and
    // day are), and months likewise.
    let years = on.years_since(birth).ok_or_else(|| after(field))?;
    let month_index = |date: NaiveDate| i64::from(date.year()) * 12 + i64::from(date.month0());
    let mut total_months = month_index(on) - month_index(birth);
    if on.day() < birth.day() {
        total_months -= 1;
    }
    let months_since = u32::try_from(total_months).map_err(|_| after(field))?;
    // The last monthly anniversary: on its day of the month, or on the
    // first of the next month where that day does not exist.
    let anniversary = birth
        .checked_add_months(Months::new(months_since))
        .and_then(|date| {
            if date.day() == birth.day() {
                Some(date)
            } else {
                date.succ_opt()
            }
        })
        .ok_or_else(|| after(field))?;
    Ok(AgeOutput {
        years,
        months: months_since % 12,
        days: (on - anniversary).num_days(),
        total_days: (on - birth).num_days(),
        on: on.to_string(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CronNextInput {
    /// A cron expression: 5 fields (minute hour day-of-month month
    /// day-of-week), or 6 with seconds first. Names (`MON`, `JAN`), ranges,
    /// steps, lists, `L`, `W`, `#` and `@daily`-style aliases are taken;
    /// day-of-month and day-of-week match when either does, as in Vixie
    /// cron.
    #[schemars(length(max = 256))]
    pub expression: String,
    /// How many run times (1 to 100, default 5).
    #[schemars(range(min = 1, max = 100))]
    pub count: Option<u32>,
    /// The runs listed are those strictly after this date-time (RFC 3339 /
    /// ISO 8601; default now).
    #[schemars(length(max = DATETIME_LEN))]
    pub from: Option<String>,
    /// The IANA time zone the schedule runs in (default UTC); a `from`
    /// without an offset is read in it too.
    #[schemars(length(max = ZONE_LEN))]
    pub time_zone: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronNextOutput {
    /// The time zone the runs are in.
    pub time_zone: String,
    /// The time the runs follow, RFC 3339.
    pub from: String,
    /// The run times, RFC 3339 with the zone's offset. Fewer than asked for
    /// if the schedule runs out before the year 5000.
    pub runs: Vec<String>,
}

fn cron_next(input: CronNextInput) -> Result<CronNextOutput, ToolError> {
    let zone = zone_of(input.time_zone.as_deref())?.unwrap_or(Tz::UTC);
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(input.expression.trim())
        .map_err(|error| ToolError::field("expression", error))?;
    let from = match &input.from {
        Some(from) => instant("from", from, Some(zone))?,
        None => Utc::now(),
    }
    .with_timezone(&zone);
    let count = input.count.unwrap_or(5).clamp(1, 100) as usize;
    let mut runs = Vec::with_capacity(count);
    let mut cursor = from;
    while runs.len() < count {
        match cron.find_next_occurrence(&cursor, false) {
            Ok(next) => {
                runs.push(rfc3339(&next));
                cursor = next;
            }
            Err(error) if runs.is_empty() => {
                return Err(ToolError::field(
                    "expression",
                    format!("no run time found after {}: {error}", rfc3339(&from)),
                ));
            }
            Err(_) => break,
        }
    }
    Ok(CronNextOutput {
        time_zone: zone.name().to_string(),
        from: rfc3339(&from),
        runs,
    })
}

#[cfg(test)]
mod tests {
    use crate::testing::{field_of_error as refused, run};
    use serde_json::{json, Value};
    use std::time::Instant;

    #[test]
    fn unix_to_iso_knows_well_known_instants() {
        // The epoch, the 1.7-billion-second mark, the "billennium" and the
        // last second of signed 32-bit time (the Y2038 limit).
        for (timestamp, utc) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (1_000_000_000, "2001-09-09T01:46:40Z"),
            (2_147_483_647, "2038-01-19T03:14:07Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ] {
            let output = run("unix-to-iso", json!({ "timestamp": timestamp }));
            assert_eq!(output["utc"], utc);
            assert_eq!(output["iso"], utc);
            assert_eq!(output["timeZone"], "UTC");
            assert_eq!(output["offset"], "+00:00");
        }
        let millis = run(
            "unix-to-iso",
            json!({ "timestamp": 1_700_000_000_123i64, "unit": "milliseconds" }),
        );
        assert_eq!(millis["utc"], "2023-11-14T22:13:20.123Z");
        let fraction = run("unix-to-iso", json!({ "timestamp": 1_700_000_000.5 }));
        assert_eq!(fraction["utc"], "2023-11-14T22:13:20.500Z");
        let berlin = run(
            "unix-to-iso",
            json!({ "timestamp": 1_700_000_000, "timeZone": "Europe/Berlin" }),
        );
        assert_eq!(berlin["iso"], "2023-11-14T23:13:20+01:00");
        assert_eq!(berlin["utc"], "2023-11-14T22:13:20Z");
        assert_eq!(berlin["offset"], "+01:00");
    }

    #[test]
    fn unix_to_iso_follows_dst() {
        // 2024 transitions (tz database): New York springs forward at
        // 2024-03-10T07:00Z and falls back at 2024-11-03T06:00Z; Berlin at
        // 2024-03-31T01:00Z and 2024-10-27T01:00Z.
        let at = |timestamp: i64, zone: &str| {
            run(
                "unix-to-iso",
                json!({ "timestamp": timestamp, "timeZone": zone }),
            )["iso"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            at(1_710_053_999, "America/New_York"),
            "2024-03-10T01:59:59-05:00"
        );
        assert_eq!(
            at(1_710_054_000, "America/New_York"),
            "2024-03-10T03:00:00-04:00"
        );
        assert_eq!(
            at(1_730_613_599, "America/New_York"),
            "2024-11-03T01:59:59-04:00"
        );
        assert_eq!(
            at(1_730_613_600, "America/New_York"),
            "2024-11-03T01:00:00-05:00"
        );
        assert_eq!(
            at(1_711_846_799, "Europe/Berlin"),
            "2024-03-31T01:59:59+01:00"
        );
        assert_eq!(
            at(1_711_846_800, "Europe/Berlin"),
            "2024-03-31T03:00:00+02:00"
        );
        assert_eq!(
            at(1_729_990_799, "Europe/Berlin"),
            "2024-10-27T02:59:59+02:00"
        );
        assert_eq!(
            at(1_729_990_800, "Europe/Berlin"),
            "2024-10-27T02:00:00+01:00"
        );
    }

    #[test]
    fn unix_to_iso_refuses() {
        let zone = json!({ "timestamp": 0, "timeZone": "Mars/Olympus_Mons" });
        assert_eq!(refused("unix-to-iso", zone).as_deref(), Some("timeZone"));
        let far = json!({ "timestamp": 1e18 });
        assert_eq!(refused("unix-to-iso", far).as_deref(), Some("timestamp"));
        let unit = json!({ "timestamp": 0, "unit": "minutes" });
        assert_eq!(refused("unix-to-iso", unit).as_deref(), Some("unit"));
    }

    #[test]
    fn iso_to_unix_reads_every_spelling() {
        for datetime in [
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:20+00:00",
            "2023-11-14t22:13:20z",
            "2023-11-14 22:13:20Z",
            "2023-11-14T23:13:20+01:00",
            "2023-11-14T17:13:20-05:00",
            "2023-11-14T23:13:20+0100",
            "2023-11-14T23:13:20+01",
            "2023-11-14T22:13:20.000Z",
            "2023-11-14T22:13:20",
            "2023-11-14 22:13:20",
            "20231114T221320Z",
        ] {
            let output = run("iso-to-unix", json!({ "datetime": datetime }));
            assert_eq!(output["seconds"], 1_700_000_000, "{datetime}");
            assert_eq!(output["milliseconds"], 1_700_000_000_000i64, "{datetime}");
            assert_eq!(output["utc"], "2023-11-14T22:13:20Z", "{datetime}");
        }
        let epoch = run("iso-to-unix", json!({ "datetime": "1970-01-01" }));
        assert_eq!(epoch["seconds"], 0);
        let minutes = run("iso-to-unix", json!({ "datetime": "2023-11-14T22:13Z" }));
        assert_eq!(minutes["seconds"], 1_699_999_980);
        let millis = run(
            "iso-to-unix",
            json!({ "datetime": "1969-12-31T23:59:59.999Z" }),
        );
        assert_eq!(millis["seconds"], -1);
        assert_eq!(millis["milliseconds"], -1);
    }

    #[test]
    fn iso_to_unix_reads_wall_times_in_the_zone_named() {
        let unix = |datetime: &str, zone: &str| {
            run(
                "iso-to-unix",
                json!({ "datetime": datetime, "timeZone": zone }),
            )["seconds"]
                .as_i64()
                .unwrap()
        };
        assert_eq!(unix("2023-11-14T23:13:20", "Europe/Berlin"), 1_700_000_000);
        // An offset wins over the zone.
        assert_eq!(unix("2023-11-14T22:13:20Z", "Europe/Berlin"), 1_700_000_000);
        // Skipped (spring forward): read with the offset before the gap,
        // RFC 5545 3.3.5: 02:30 EST = 07:30Z.
        assert_eq!(
            unix("2024-03-10T02:30:00", "America/New_York"),
            1_710_055_800
        );
        assert_eq!(unix("2024-03-31T02:30:00", "Europe/Berlin"), 1_711_848_600);
        // Repeated (fall back): the first, 01:30 EDT = 05:30Z.
        assert_eq!(
            unix("2024-11-03T01:30:00", "America/New_York"),
            1_730_611_800
        );
        assert_eq!(unix("2024-10-27T02:30:00", "Europe/Berlin"), 1_729_989_000);
    }

    #[test]
    fn iso_to_unix_refuses() {
        for datetime in [
            "yesterday",
            "2023-02-30T00:00:00Z",
            "2023-11-14T25:00:00Z",
            "",
        ] {
            let input = json!({ "datetime": datetime });
            assert_eq!(refused("iso-to-unix", input).as_deref(), Some("datetime"));
        }
        let long = json!({ "datetime": "2".repeat(65) });
        assert_eq!(refused("iso-to-unix", long).as_deref(), Some("datetime"));
        let zone = json!({ "datetime": "2023-11-14T22:13:20", "timeZone": "Berlin" });
        assert_eq!(refused("iso-to-unix", zone).as_deref(), Some("timeZone"));
    }

    #[test]
    fn time_add_steps_the_calendar_then_the_clock() {
        let add = |input: Value| {
            run("time-add", input)["result"]
                .as_str()
                .unwrap()
                .to_string()
        };
        // Month ends clamp (as Java's plusMonths and Temporal's "constrain").
        assert_eq!(
            add(json!({ "datetime": "2024-01-31T12:00:00Z", "duration": "P1M" })),
            "2024-02-29T12:00:00Z"
        );
        assert_eq!(
            add(json!({ "datetime": "2023-01-31T12:00:00Z", "duration": "P1M" })),
            "2023-02-28T12:00:00Z"
        );
        assert_eq!(
            add(json!({ "datetime": "2024-01-31T12:00:00Z", "duration": "P1M2DT3H" })),
            "2024-03-02T15:00:00Z"
        );
        assert_eq!(
            add(json!({ "datetime": "2024-02-29T00:00:00Z", "duration": "P1Y" })),
            "2025-02-28T00:00:00Z"
        );
        assert_eq!(
            add(json!({ "datetime": "2024-01-01T00:00:00Z", "duration": "P2W" })),
            "2024-01-15T00:00:00Z"
        );
        assert_eq!(
            add(json!({ "datetime": "2024-01-01T00:00:00Z", "duration": "-PT90M" })),
            "2023-12-31T22:30:00Z"
        );
        assert_eq!(
            add(json!({ "datetime": "2024-01-01T00:00:00Z", "duration": "PT1.5S" })),
            "2024-01-01T00:00:01.500Z"
        );
        assert_eq!(
            add(json!({ "datetime": "2024-01-01T00:00:00+05:30", "duration": "P1D" })),
            "2024-01-02T00:00:00+05:30"
        );
        // Seconds, as a number.
        let seconds = run(
            "time-add",
            json!({ "datetime": "1970-01-01T00:00:00Z", "duration": 1_700_000_000 }),
        );
        assert_eq!(seconds["result"], "2023-11-14T22:13:20Z");
        assert_eq!(seconds["unix"], 1_700_000_000);
        assert_eq!(
            add(json!({ "datetime": "2023-11-14T22:13:20Z", "duration": -0.25 })),
            "2023-11-14T22:13:19.750Z"
        );
    }

    #[test]
    fn time_add_across_dst_in_a_zone() {
        let add = |datetime: &str, duration: &str, zone: &str| {
            run(
                "time-add",
                json!({ "datetime": datetime, "duration": duration, "timeZone": zone }),
            )["result"]
                .as_str()
                .unwrap()
                .to_string()
        };
        // A calendar day keeps the wall clock; 24 hours do not.
        let ny = "America/New_York";
        assert_eq!(
            add("2024-03-09T12:00:00", "P1D", ny),
            "2024-03-10T12:00:00-04:00"
        );
        assert_eq!(
            add("2024-03-09T12:00:00", "PT24H", ny),
            "2024-03-10T13:00:00-04:00"
        );
        assert_eq!(
            add("2024-11-02T12:00:00", "P1D", ny),
            "2024-11-03T12:00:00-05:00"
        );
        assert_eq!(
            add("2024-11-03T00:30:00", "PT2H", ny),
            "2024-11-03T01:30:00-05:00"
        );
        let berlin = "Europe/Berlin";
        assert_eq!(
            add("2024-03-30T02:30:00", "P1D", berlin),
            "2024-03-31T03:30:00+02:00"
        );
        assert_eq!(
            add("2024-10-26T12:00:00Z", "P1D", berlin),
            "2024-10-27T14:00:00+01:00"
        );
    }

    #[test]
    fn time_add_refuses() {
        for duration in [
            json!("1 day"),
            json!("P"),
            json!("PT"),
            json!("P1.5D"),
            json!("PT1S1M"),
        ] {
            let input = json!({ "datetime": "2024-01-01T00:00:00Z", "duration": duration });
            assert_eq!(refused("time-add", input).as_deref(), Some("duration"));
        }
        let huge = json!({ "datetime": "2024-01-01T00:00:00Z", "duration": "P999999999Y" });
        assert_eq!(refused("time-add", huge).as_deref(), Some("duration"));
        let bad = json!({ "datetime": "soon", "duration": "P1D" });
        assert_eq!(refused("time-add", bad).as_deref(), Some("datetime"));
    }

    #[test]
    fn time_diff_counts_exactly() {
        let diff = run(
            "time-diff",
            json!({ "from": "2024-01-01T00:00:00Z", "to": "2024-03-01T12:30:00Z" }),
        );
        // 31 + 29 days (2024 is a leap year) and 12.5 hours.
        assert_eq!(diff["seconds"], 5_229_000.0);
        assert_eq!(diff["minutes"], 87_150.0);
        assert_eq!(diff["hours"], 1452.5);
        assert_eq!(diff["days"], 60.520_833_333_333_336);
        assert_eq!(diff["duration"], "P60DT12H30M");
        let back = run(
            "time-diff",
            json!({ "from": "2024-01-01T00:00:01.5Z", "to": "2024-01-01T00:00:00Z" }),
        );
        assert_eq!(back["seconds"], -1.5);
        assert_eq!(back["duration"], "-PT1.5S");
        let same = run(
            "time-diff",
            json!({ "from": "2024-01-01T01:00:00+01:00", "to": "2024-01-01T00:00:00Z" }),
        );
        assert_eq!(same["duration"], "PT0S");
        let day = run(
            "time-diff",
            json!({ "from": "1970-01-01T00:00:00Z", "to": "1970-01-02T00:00:00Z" }),
        );
        assert_eq!(day["duration"], "P1D");
        // The spring-forward day in New York has 23 hours.
        let short = run(
            "time-diff",
            json!({ "from": "2024-03-10", "to": "2024-03-11", "timeZone": "America/New_York" }),
        );
        assert_eq!(short["duration"], "PT23H");
        assert_eq!(short["hours"], 23.0);
    }

    #[test]
    fn time_diff_refuses() {
        let from = json!({ "from": "nope", "to": "2024-01-01T00:00:00Z" });
        assert_eq!(refused("time-diff", from).as_deref(), Some("from"));
        let to = json!({ "from": "2024-01-01T00:00:00Z", "to": "2024-13-01T00:00:00Z" });
        assert_eq!(refused("time-diff", to).as_deref(), Some("to"));
    }

    #[test]
    fn age_handles_leap_day_birthdays() {
        let age = |birth: &str, on: &str| {
            let output = run("age", json!({ "birthDate": birth, "on": on }));
            (
                output["years"].as_u64().unwrap(),
                output["months"].as_u64().unwrap(),
                output["days"].as_i64().unwrap(),
                output["totalDays"].as_i64().unwrap(),
            )
        };
        // Born 2000-02-29: 24 on 2024-02-29 after 8766 days (24 × 365 + 6 leap
        // days); in a common year the birthday comes on 1 March.
        assert_eq!(age("2000-02-29", "2024-02-29"), (24, 0, 0, 8766));
        assert_eq!(age("2000-02-29", "2023-02-28"), (22, 11, 30, 8400));
        assert_eq!(age("2000-02-29", "2023-03-01"), (23, 0, 0, 8401));
        assert_eq!(age("2000-02-29", "2000-02-29"), (0, 0, 0, 0));
        assert_eq!(age("2000-02-29", "2000-03-01"), (0, 0, 1, 1));
        // A month end: born 31 January, a month old on 1 March.
        assert_eq!(age("2023-01-31", "2023-02-28"), (0, 0, 28, 28));
        assert_eq!(age("2023-01-31", "2023-03-01"), (0, 1, 0, 29));
        assert_eq!(age("1990-05-15", "2024-05-14"), (33, 11, 29, 12_418));
        assert_eq!(age("1990-05-15", "2024-05-15"), (34, 0, 0, 12_419));
        // Today, by default: plausible only.
        let today = run("age", json!({ "birthDate": "2000-01-01" }));
        assert!(today["years"].as_u64().unwrap() >= 25);
    }

    #[test]
    fn age_refuses() {
        let before = json!({ "birthDate": "2024-01-02", "on": "2024-01-01" });
        assert_eq!(refused("age", before).as_deref(), Some("on"));
        let future = json!({ "birthDate": "9999-01-01" });
        assert_eq!(refused("age", future).as_deref(), Some("birthDate"));
        let bad = json!({ "birthDate": "2001-02-29" });
        assert_eq!(refused("age", bad).as_deref(), Some("birthDate"));
        let on = json!({ "birthDate": "2000-01-01", "on": "01/02/2024" });
        assert_eq!(refused("age", on).as_deref(), Some("on"));
    }

    fn runs(input: Value) -> Vec<String> {
        let output = run("cron-next", input);
        output["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| run.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn cron_next_lists_known_runs() {
        // 2024-01-01 is a Monday.
        assert_eq!(
            runs(
                json!({ "expression": "0 9 * * MON-FRI", "from": "2024-01-05T10:00:00Z", "count": 3 })
            ),
            [
                "2024-01-08T09:00:00Z",
                "2024-01-09T09:00:00Z",
                "2024-01-10T09:00:00Z"
            ]
        );
        // Strictly after `from`.
        assert_eq!(
            runs(
                json!({ "expression": "*/15 * * * *", "from": "2024-01-01T00:00:00Z", "count": 2 })
            ),
            ["2024-01-01T00:15:00Z", "2024-01-01T00:30:00Z"]
        );
        // Six fields: seconds first.
        assert_eq!(
            runs(
                json!({ "expression": "30 0 12 * * *", "from": "2024-01-01T00:00:00Z", "count": 2 })
            ),
            ["2024-01-01T12:00:30Z", "2024-01-02T12:00:30Z"]
        );
        // Leap days only.
        assert_eq!(
            runs(json!({ "expression": "0 0 29 2 *", "from": "2024-03-01T00:00:00Z", "count": 2 })),
            ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
        );
        assert_eq!(
            runs(json!({ "expression": "@monthly", "from": "2024-01-15T00:00:00Z", "count": 2 })),
            ["2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"]
        );
        // Day-of-month OR day-of-week, as Vixie cron: the 13th or a Friday.
        assert_eq!(
            runs(
                json!({ "expression": "0 0 13 * FRI", "from": "2024-09-01T00:00:00Z", "count": 3 })
            ),
            [
                "2024-09-06T00:00:00Z",
                "2024-09-13T00:00:00Z",
                "2024-09-20T00:00:00Z"
            ]
        );
        let output = run(
            "cron-next",
            json!({ "expression": "0 0 1 1 *", "from": "2024-06-01T00:00:00Z" }),
        );
        assert_eq!(output["runs"].as_array().unwrap().len(), 5);
        assert_eq!(output["runs"][4], "2029-01-01T00:00:00Z");
        assert_eq!(output["from"], "2024-06-01T00:00:00Z");
        assert_eq!(output["timeZone"], "UTC");
    }

    #[test]
    fn cron_next_runs_in_the_zone_named() {
        let ny = |expression: &str, from: &str, count: u32| {
            runs(json!({
                "expression": expression, "from": from, "count": count,
                "timeZone": "America/New_York",
            }))
        };
        assert_eq!(
            ny("0 9 * * MON-FRI", "2024-01-01T00:00:00Z", 3),
            [
                "2024-01-01T09:00:00-05:00",
                "2024-01-02T09:00:00-05:00",
                "2024-01-03T09:00:00-05:00"
            ]
        );
        // 09:00 New York time is 14:00Z in winter and 13:00Z in summer.
        assert_eq!(
            ny("0 9 * * *", "2024-03-09T12:00:00", 2),
            ["2024-03-10T09:00:00-04:00", "2024-03-11T09:00:00-04:00"]
        );
        // 02:30 does not exist on 2024-03-10: the run comes right after the gap.
        assert_eq!(
            ny("30 2 * * *", "2024-03-09T00:00:00", 3),
            [
                "2024-03-09T02:30:00-05:00",
                "2024-03-10T03:00:00-04:00",
                "2024-03-11T02:30:00-04:00"
            ]
        );
        // 01:30 happens twice on 2024-11-03: a daily job runs once.
        assert_eq!(
            ny("30 1 * * *", "2024-11-02T12:00:00", 2),
            ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"]
        );
        let berlin = runs(json!({
            "expression": "0 12 * * *", "from": "2024-10-26T00:00:00Z", "count": 2,
            "timeZone": "Europe/Berlin",
        }));
        assert_eq!(
            berlin,
            ["2024-10-26T12:00:00+02:00", "2024-10-27T12:00:00+01:00"]
        );
    }

    #[test]
    fn cron_next_defaults_to_now() {
        let output = run("cron-next", json!({ "expression": "* * * * *" }));
        let runs = output["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 5);
        let first = chrono::DateTime::parse_from_rfc3339(runs[0].as_str().unwrap()).unwrap();
        let now = chrono::Utc::now();
        assert!(first > now - chrono::TimeDelta::minutes(1));
        assert!(first <= now + chrono::TimeDelta::minutes(1));
    }

    #[test]
    fn cron_next_refuses() {
        for expression in [
            "61 * * * *",
            "* * *",
            "0 0 0 1 1 * 2030",
            "banana",
            "",
            "*/0 * * * *",
        ] {
            let input = json!({ "expression": expression, "from": "2024-01-01T00:00:00Z" });
            assert_eq!(
                refused("cron-next", input).as_deref(),
                Some("expression"),
                "{expression}"
            );
        }
        let count = json!({ "expression": "* * * * *", "count": 101 });
        assert_eq!(refused("cron-next", count).as_deref(), Some("count"));
        let zero = json!({ "expression": "* * * * *", "count": 0 });
        assert_eq!(refused("cron-next", zero).as_deref(), Some("count"));
        let from = json!({ "expression": "* * * * *", "from": "later" });
        assert_eq!(refused("cron-next", from).as_deref(), Some("from"));
        let zone = json!({ "expression": "* * * * *", "timeZone": "EST5EDT6" });
        assert_eq!(refused("cron-next", zone).as_deref(), Some("timeZone"));
    }

    #[test]
    fn cron_next_gives_up_on_impossible_dates_quickly() {
        // 30 February never comes: the search stops at croner's year limit.
        let started = Instant::now();
        let input =
            json!({ "expression": "0 0 30 2 *", "from": "2024-01-01T00:00:00Z", "count": 100 });
        assert_eq!(refused("cron-next", input).as_deref(), Some("expression"));
        let worst = json!({ "expression": "59 59 23 31 2 *", "from": "2024-01-01T00:00:00Z", "count": 100 });
        assert_eq!(refused("cron-next", worst).as_deref(), Some("expression"));
        assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    }
}
