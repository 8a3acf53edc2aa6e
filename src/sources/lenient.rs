//! Lenient deserializers for provider payloads.
//!
//! Senders are loose with types: a URL is `""` rather than absent, a list is `null`, an id is a
//! number one day and a string the next, a time is epoch seconds in one field and ISO 8601 in
//! another. Each such quirk is read by one helper here, which every provider's event types reuse
//! for every field it concerns, so that the same quirk is read the same way everywhere:
//!
//! - [`non_empty`]: `""` in an optional string (avatars, thumbnails, URLs) is `None`.
//! - [`null_default`]: a `null` list or object is an empty one.
//! - [`string_or_number`]: an id sent as a string, or as a JSON integer.
//! - [`epoch_ms`]: an optional instant in epoch milliseconds, as an integer or a numeric string.
//! - [`flexible_time`]: an optional instant in any encoding: integer or float epoch seconds (a
//!   float keeps its microseconds), numeric strings and ISO 8601 strings; `0` and `""` are `None`.
//! - [`wire_enum!`]: an enum whose wire value is a name or an integer code, keeping unknown
//!   values in `Other`.
//!
//! Fields name them in their attributes (`#[serde(default, deserialize_with =
//! "lenient::non_empty")]`), so that a reader of a type sees which quirk each field allows.
//! Absence is always `#[serde(default)]`'s job; these helpers say what a *present* value means.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;

/// A string where `""` stands for "none" (avatars, thumbnails, URLs); `null` is `None` too.
pub(crate) fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// A list or object where `null` stands for empty: the type's default, as for an absent key.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An id sent as a string but possibly as a JSON integer, read as its text.
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    /// Accepts strings and integers.
    struct IdVisitor;

    impl Visitor<'_> for IdVisitor {
        type Value = String;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or an integer")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }

    de.deserialize_any(IdVisitor)
}

/// Serde helper (`#[serde(with = "lenient::epoch_ms")]`) for an optional instant in epoch
/// milliseconds, sent as an integer or a numeric string; `null` is `None`. Written back as an
/// integer.
pub(crate) mod epoch_ms {
    use chrono::{DateTime, Utc};
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    /// Accepts integers, numeric strings and `null`.
    struct MsVisitor;

    impl Visitor<'_> for MsVisitor {
        type Value = Option<DateTime<Utc>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("epoch milliseconds as an integer or a numeric string")
        }

        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_i64<E: Error>(self, ms: i64) -> Result<Self::Value, E> {
            DateTime::from_timestamp_millis(ms)
                .map(Some)
                .ok_or_else(|| E::custom(format_args!("epoch milliseconds out of range: {ms}")))
        }

        fn visit_u64<E: Error>(self, ms: u64) -> Result<Self::Value, E> {
            let ms = i64::try_from(ms)
                .map_err(|_| E::custom(format_args!("epoch milliseconds out of range: {ms}")))?;
            self.visit_i64(ms)
        }

        fn visit_str<E: Error>(self, s: &str) -> Result<Self::Value, E> {
            let ms = s
                .parse::<i64>()
                .map_err(|_| E::custom(format_args!("expected epoch milliseconds, got {s:?}")))?;
            self.visit_i64(ms)
        }
    }

    /// Deserializes an optional epoch-milliseconds instant.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        de: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        de.deserialize_any(MsVisitor)
    }

    /// Serializes back as an integer of epoch milliseconds (or `null`).
    pub(crate) fn serialize<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        ser: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => ser.serialize_i64(t.timestamp_millis()),
            None => ser.serialize_none(),
        }
    }
}

/// Any of a sender's time encodings as a UTC time; `null`, absent, `0` and `""` mean "never".
///
/// Accepts integer or float epoch seconds (a float keeps its microseconds), the same as a numeric
/// string, and ISO 8601 strings (RFC 3339, or Rails' `2020-03-03 13:05:57 UTC`). One helper for
/// every time field, so that a field switching encoding still decodes.
pub(crate) fn flexible_time<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    d.deserialize_any(TimeVisitor)
}

/// The visitor behind [`flexible_time`].
struct TimeVisitor;

impl<'de> Visitor<'de> for TimeVisitor {
    type Value = Option<DateTime<Utc>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("epoch seconds (integer, float or numeric string), an ISO 8601 string, or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        epoch(v, 0).ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        let time = i64::try_from(v).ok().and_then(|secs| epoch(secs, 0));
        time.ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        epoch_float(v).ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_time(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
    }
}

/// Epoch seconds and microseconds as a time: `Some(None)` for 0 ("never"), `None` when out of range.
fn epoch(secs: i64, micros: u32) -> Option<Option<DateTime<Utc>>> {
    if secs == 0 && micros == 0 {
        return Some(None);
    }
    DateTime::from_timestamp(secs, micros * 1_000).map(Some)
}

/// Float epoch seconds, rounded to the microsecond (senders write six decimals; an `f64` near
/// 2026 is exact to a quarter of a microsecond, so rounding recovers them).
fn epoch_float(v: f64) -> Option<Option<DateTime<Utc>>> {
    if !v.is_finite() {
        return None;
    }
    let secs = v.floor();
    let micros = ((v - secs) * 1e6).round() as u32;
    if micros >= 1_000_000 {
        return epoch((secs as i64).saturating_add(1), 0);
    }
    epoch(secs as i64, micros)
}

/// A time string: empty is "never", a number is epoch seconds, anything else ISO 8601.
fn parse_time(s: &str) -> Option<Option<DateTime<Utc>>> {
    let s = s.trim();
    if s.is_empty() {
        return Some(None);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return epoch(secs, 0);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return epoch_float(secs);
    }
    parse_iso(s).map(Some)
}

/// ISO 8601 as Chatwoot and Rails write it: RFC 3339, `2020-03-03 13:05:57 +0000`, or a date-time
/// without offset (optionally followed by ` UTC`, Ruby's `Time#to_s`), read as UTC.
fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(s) {
        return Some(time.to_utc());
    }
    if let Ok(time) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f %z") {
        return Some(time.to_utc());
    }
    let naive = s.strip_suffix(" UTC").unwrap_or(s);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(naive, format).ok())
        .map(|time| time.and_utc())
}

/// Declares an enum whose wire value is a name or (inside raw Rails records) an integer code, with
/// an `Other(String)` for values this version does not know; it serializes as the name.
///
/// `Variant = "name" | "alias", code 0;` — aliases and code are optional.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $wire:literal $(| $alias:literal)* $(, code $code:literal)?;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version does not know, kept as sent (an integer as its decimal text).
            Other(String),
        }

        impl $name {
            /// The name as a top-level field spells it: what serialization writes.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )*
                    Self::Other(name) => name,
                }
            }
        }

        impl $crate::sources::lenient::WireEnum for $name {
            const EXPECTING: &'static str = concat!("a ", stringify!($name), " name or code");

            fn from_name(name: &str) -> Self {
                match name {
                    $( $wire $(| $alias)* => Self::$variant, )*
                    _ => Self::Other(name.to_owned()),
                }
            }

            fn from_code(code: i64) -> Self {
                $( $( if code == $code { return Self::$variant; } )? )*
                Self::Other(code.to_string())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::sources::lenient::deserialize_wire_enum(d)
            }
        }
    };
}

pub(crate) use wire_enum;

/// What [`wire_enum!`] types share, so that one visitor reads them all.
pub(crate) trait WireEnum: Sized {
    /// What an error message says was expected.
    const EXPECTING: &'static str;
    /// The value for a name (`Other` when unknown).
    fn from_name(name: &str) -> Self;
    /// The value for an integer code (`Other` when unknown).
    fn from_code(code: i64) -> Self;
}

/// Reads a [`wire_enum!`] type from a string or an integer.
pub(crate) fn deserialize_wire_enum<'de, D: Deserializer<'de>, T: WireEnum>(
    d: D,
) -> Result<T, D::Error> {
    d.deserialize_any(WireVisitor(PhantomData))
}

/// Reads a wire enum from a string or an integer without allocating for known names.
struct WireVisitor<T>(PhantomData<T>);

impl<T: WireEnum> Visitor<'_> for WireVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::from_name(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Ok(T::from_code(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok(i64::try_from(v).map_or_else(|_| T::from_name(&v.to_string()), T::from_code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde::Serialize;

    /// A struct with one field of each helper, to test them in isolation.
    #[derive(Debug, Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default, with = "epoch_ms")]
        at: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "flexible_time")]
        t: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "non_empty")]
        url: Option<String>,
        #[serde(default, deserialize_with = "null_default")]
        list: Vec<String>,
        #[serde(default, deserialize_with = "string_or_number")]
        line_provider_id: String,
    }

    fn probe(json: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn expected_ms() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 18, 18, 18, 18).unwrap()
    }

    #[test]
    fn epoch_ms_as_number() {
        assert_eq!(
            probe(r#"{"at": 1718734698000}"#).unwrap().at,
            Some(expected_ms())
        );
    }

    #[test]
    fn epoch_ms_as_string() {
        assert_eq!(
            probe(r#"{"at": "1718734698000"}"#).unwrap().at,
            Some(expected_ms())
        );
    }

    #[test]
    fn epoch_ms_keeps_milliseconds() {
        let at = probe(r#"{"at": 1717870698888}"#).unwrap().at.unwrap();
        assert_eq!(at.timestamp_millis(), 1717870698888);
    }

    #[test]
    fn epoch_ms_null_and_absent_are_none() {
        assert_eq!(probe(r#"{"at": null}"#).unwrap().at, None);
        assert_eq!(probe("{}").unwrap().at, None);
    }

    #[test]
    fn epoch_ms_invalid_string_is_error() {
        let err = probe(r#"{"at": "yesterday"}"#).unwrap_err();
        assert!(err.to_string().contains("epoch milliseconds"), "{err}");
        assert!(probe(r#"{"at": "1718734698000.5"}"#).is_err());
        assert!(probe(r#"{"at": true}"#).is_err());
    }

    #[test]
    fn epoch_ms_out_of_range_is_error() {
        assert!(probe(r#"{"at": 18446744073709551615}"#).is_err());
        assert!(probe(r#"{"at": "9223372036854775807"}"#).is_err());
    }

    #[test]
    fn epoch_ms_serializes_as_integer() {
        let json = serde_json::to_value(probe(r#"{"at": "1718734698000"}"#).unwrap()).unwrap();
        assert_eq!(json["at"], serde_json::json!(1718734698000_i64));
    }

    #[test]
    fn empty_string_is_none() {
        let url = |json: &str| probe(json).unwrap().url;
        assert_eq!(url(r#"{"url": ""}"#), None);
        assert_eq!(url(r#"{"url": null}"#), None);
        assert_eq!(url("{}"), None);
        assert_eq!(
            url(r#"{"url": "https://x/a.png"}"#).as_deref(),
            Some("https://x/a.png")
        );
    }

    #[test]
    fn null_list_is_empty() {
        let list = |json: &str| probe(json).unwrap().list;
        assert!(list(r#"{"list": null}"#).is_empty());
        assert!(list("{}").is_empty());
        assert_eq!(list(r#"{"list": ["vip"]}"#), ["vip"]);
    }

    #[test]
    fn line_provider_id_as_number_or_string() {
        let p = probe(r#"{"lineProviderId": 1660894172}"#).unwrap();
        assert_eq!(p.line_provider_id, "1660894172");
        assert_eq!(
            serde_json::to_value(&p).unwrap()["lineProviderId"],
            "1660894172"
        );
        let p = probe(r#"{"lineProviderId": "1660894172"}"#).unwrap();
        assert_eq!(p.line_provider_id, "1660894172");
        assert!(probe(r#"{"lineProviderId": 1.5}"#).is_err());
    }

    fn time(json: &str) -> Option<DateTime<Utc>> {
        probe(json).map(|x| x.t).unwrap()
    }

    fn at(secs: i64, micros: u32) -> Option<DateTime<Utc>> {
        Some(Utc.timestamp_opt(secs, micros * 1_000).unwrap())
    }

    #[test]
    fn time_integer_epoch_seconds() {
        assert_eq!(time(r#"{"t": 1768967324}"#), at(1_768_967_324, 0));
    }

    #[test]
    fn time_zero_null_absent_and_empty_are_never() {
        for json in [
            r#"{"t": 0}"#,
            r#"{"t": 0.0}"#,
            r#"{"t": null}"#,
            "{}",
            r#"{"t": ""}"#,
            r#"{"t": "0"}"#,
        ] {
            assert_eq!(time(json), None, "{json}");
        }
    }

    #[test]
    fn time_float_keeps_microseconds() {
        assert_eq!(
            time(r#"{"t": 1768967324.268219}"#),
            at(1_768_967_324, 268_219)
        );
        assert_eq!(
            time(r#"{"t": 1768968296.5483441}"#),
            at(1_768_968_296, 548_344)
        );
        assert_eq!(time(r#"{"t": 1768968296.9999999}"#), at(1_768_968_297, 0));
    }

    #[test]
    fn time_iso_strings() {
        assert_eq!(
            time(r#"{"t": "2026-01-21T03:26:49.012Z"}"#),
            at(1_768_966_009, 12_000)
        );
        assert_eq!(
            time(r#"{"t": "2026-01-21T11:26:49.012+08:00"}"#),
            at(1_768_966_009, 12_000)
        );
        assert_eq!(
            time(r#"{"t": "2026-01-21 03:26:49 UTC"}"#),
            at(1_768_966_009, 0)
        );
        assert_eq!(
            time(r#"{"t": "2026-01-21 03:26:49 +0000"}"#),
            at(1_768_966_009, 0)
        );
        assert_eq!(
            time(r#"{"t": "2026-01-21T03:26:49"}"#),
            at(1_768_966_009, 0)
        );
    }

    #[test]
    fn time_numeric_strings() {
        assert_eq!(time(r#"{"t": "1768967324"}"#), at(1_768_967_324, 0));
        assert_eq!(
            time(r#"{"t": "1768967324.268219"}"#),
            at(1_768_967_324, 268_219)
        );
    }

    #[test]
    fn time_rejects_garbage_without_panicking() {
        for json in [
            r#"{"t": "soon"}"#,
            r#"{"t": true}"#,
            r#"{"t": {}}"#,
            r#"{"t": 1e300}"#,
            r#"{"t": "inf"}"#,
            r#"{"t": 18446744073709551615}"#,
        ] {
            assert!(probe(json).is_err(), "{json}");
        }
    }
}
