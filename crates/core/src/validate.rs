//! Validation of request bodies and query strings, with one set of DRF messages.
//!
//! Every message a client can get about a malformed field is written once, in [`msg`], so the
//! same mistake reads the same at checkout, in the producer portal, at login and in a query
//! string. Bodies are read as a JSON object and each field is checked on its own ([`Fields`]),
//! so one request reports every bad field at once (`{"title": ["This field is required."],
//! "price": [...]}`) as a DRF serializer does, instead of stopping at serde's first type error.
//! Unknown fields are ignored, like DRF. Query parameters ([`param`]) are read the way
//! django-filter reads them: an empty value is no filter, a bad one names the parameter.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::query::parse_datetime;

/// DRF's messages, word for word.
pub mod msg {
    use std::fmt::Display;

    use serde_json::Value;

    /// A required field is absent.
    pub const REQUIRED: &str = "This field is required.";
    /// `null` where a value is needed.
    pub const NOT_NULL: &str = "This field may not be null.";
    /// An empty or all-blank string where text is needed.
    pub const BLANK: &str = "This field may not be blank.";
    /// Not a JSON string.
    pub const NOT_STRING: &str = "Not a valid string.";
    /// Not an integer (or a numeric string).
    pub const NOT_INTEGER: &str = "A valid integer is required.";
    /// Not a number (or a numeric string).
    pub const NOT_NUMBER: &str = "A valid number is required.";
    /// Not a boolean.
    pub const NOT_BOOLEAN: &str = "Must be a valid boolean.";
    /// Not a UUID.
    pub const NOT_UUID: &str = "Must be a valid UUID.";
    /// Not an e-mail address.
    pub const INVALID_EMAIL: &str = "Enter a valid email address.";
    /// Not an http(s) or site-relative URL.
    pub const INVALID_URL: &str = "Enter a valid URL.";
    /// Not a date-time, in a body (DRF's `DateTimeField`).
    pub const INVALID_DATETIME: &str = "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].";
    /// Not a date-time, in a query string (Django's form field, as django-filter uses).
    pub const INVALID_DATETIME_PARAM: &str = "Enter a valid date/time.";
    /// An id filter that names nothing.
    pub const INVALID_CHOICE: &str =
        "Select a valid choice. That choice is not one of the available choices.";
    /// A page number that is not a page.
    pub const INVALID_PAGE: &str = "Invalid page.";
    /// An empty list where items are needed.
    pub const EMPTY_LIST: &str = "This list may not be empty.";

    /// Text longer than `max` characters.
    pub fn max_length(max: usize) -> String {
        format!("Ensure this field has no more than {max} characters.")
    }

    /// A list longer than `max` items.
    pub fn max_items(max: usize) -> String {
        format!("Ensure this field has no more than {max} elements.")
    }

    /// A value below `min`.
    pub fn min_value(min: impl Display) -> String {
        format!("Ensure this value is greater than or equal to {min}.")
    }

    /// A value above `max`.
    pub fn max_value(max: impl Display) -> String {
        format!("Ensure this value is less than or equal to {max}.")
    }

    /// A decimal with more than `places` decimal places.
    pub fn max_decimal_places(places: u32) -> String {
        format!("Ensure that there are no more than {places} decimal places.")
    }

    /// A value outside a fixed set, in a body.
    pub fn not_a_choice(value: impl Display) -> String {
        format!("\"{value}\" is not a valid choice.")
    }

    /// A value outside a fixed set, in a query string.
    pub fn not_a_choice_param(value: impl Display) -> String {
        format!("Select a valid choice. {value} is not one of the available choices.")
    }

    /// A body (or a list item) that is not a JSON object.
    pub fn not_an_object(value: &Value) -> String {
        format!(
            "Invalid data. Expected a dictionary, but got {}.",
            super::python_type(value)
        )
    }

    /// A field that should be a list.
    pub fn not_a_list(value: &Value) -> String {
        format!(
            "Expected a list of items but got type \"{}\".",
            super::python_type(value)
        )
    }
}

/// Per-field validation messages, serialised as DRF does: `{"field": ["message"]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// Adds `message` for `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_default()
            .push(message.into());
    }

    /// Adds every message of `other`.
    pub fn extend(&mut self, other: FieldErrors) {
        for (field, messages) in other.0 {
            self.0.entry(field).or_default().extend(messages);
        }
    }

    /// No error recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when empty, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// One error for one field.
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut e = FieldErrors::default();
        e.add(field, message);
        e
    }
}

/// The name Python (and so DRF's messages) gives a JSON value's type.
pub fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// The body as a JSON object, or DRF's `non_field_errors` for anything else.
pub fn object(body: Value) -> Result<Map<String, Value>, FieldErrors> {
    match body {
        Value::Object(map) => Ok(map),
        other => Err(FieldErrors::single(
            "non_field_errors",
            msg::not_an_object(&other),
        )),
    }
}

/// An integer from a JSON number without a fraction (DRF accepts `2.0`, not `2.5`) or a
/// numeric string.
pub fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A decimal from a JSON number or a numeric string (plain or scientific).
pub fn decimal(value: &Value) -> Option<Decimal> {
    let s = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    s.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(&s).ok())
}

/// Longest e-mail address accepted (RFC 5321's path limit, Django's `EmailField`).
pub const MAX_EMAIL_LEN: usize = 254;

/// A pragmatic email check (what Django's `EmailValidator` rejects in practice): one `@`, a
/// non-empty local part, a dotted domain of letters, digits and hyphens, no whitespace.
pub fn is_valid_email(s: &str) -> bool {
    if s.len() > MAX_EMAIL_LEN || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    if local.is_empty()
        || local.len() > 64
        || local.contains('@')
        || local.starts_with('.')
        || local.ends_with('.')
    {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()))
}

/// Reads typed fields out of a JSON object, collecting every error.
///
/// Each reader returns `None` after recording an error, `Some(None)` when the field is
/// absent and `Some(Some(value))` otherwise; [`Fields::required`] turns an absent field into
/// DRF's "required" error.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: Option<String>,
    /// Errors so far.
    pub errors: FieldErrors,
}

impl<'a> Fields<'a> {
    /// Starts reading `obj`.
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Fields {
            obj,
            prefix: None,
            errors: FieldErrors::default(),
        }
    }

    /// Starts reading `obj`, an item nested in a body: errors name the field
    /// `{prefix}.{key}` (`tickets[0].quantity`).
    pub fn nested(obj: &'a Map<String, Value>, prefix: String) -> Self {
        Fields {
            obj,
            prefix: Some(prefix),
            errors: FieldErrors::default(),
        }
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key)
    }

    /// Records `message` for `key` (prefixed for a nested item).
    pub fn add(&mut self, key: &str, message: impl Into<String>) {
        match &self.prefix {
            None => self.errors.add(key, message),
            Some(p) => self.errors.add(&format!("{p}.{key}"), message),
        }
    }

    /// A present value, or DRF's "required" error for an absent one.
    pub fn required<T>(&mut self, key: &str, read: Option<Option<T>>) -> Option<T> {
        match read {
            Some(None) => {
                self.add(key, msg::REQUIRED);
                None
            }
            read => read.flatten(),
        }
    }

    /// Records "required" for `key` if `value` is `None` and reading it did not already fail.
    pub fn require<T>(&mut self, key: &str, value: Option<T>, had_error: bool) -> Option<T> {
        if value.is_none() && !had_error {
            self.add(key, msg::REQUIRED);
        }
        value
    }

    /// A nullable field: `Some(Some(None))` for `null`, else what `read` makes of it.
    pub fn nullable<T>(
        &mut self,
        key: &str,
        read: impl FnOnce(&mut Self) -> Option<Option<T>>,
    ) -> Option<Option<Option<T>>> {
        match self.get(key) {
            Some(Value::Null) => Some(Some(None)),
            _ => read(self).map(|o| o.map(Some)),
        }
    }

    /// A string, trimmed, of at most `max` characters. Blank strings are refused unless
    /// `allow_blank`.
    pub fn string(&mut self, key: &str, max: usize, allow_blank: bool) -> Option<Option<String>> {
        match self.get(key) {
            None => Some(None),
            Some(Value::String(s)) => {
                let s = s.trim();
                if s.is_empty() && !allow_blank {
                    self.add(key, msg::BLANK);
                    None
                } else if s.chars().count() > max {
                    self.add(key, msg::max_length(max));
                    None
                } else {
                    Some(Some(s.to_string()))
                }
            }
            Some(Value::Null) => {
                self.add(key, msg::NOT_NULL);
                None
            }
            Some(_) => {
                self.add(key, msg::NOT_STRING);
                None
            }
        }
    }

    /// A nullable string: `Some(Some(None))` for `null` or blank.
    pub fn nullable_string(&mut self, key: &str, max: usize) -> Option<Option<Option<String>>> {
        self.nullable(key, |f| f.string(key, max, true))
            .map(|o| o.map(|s| s.filter(|s| !s.is_empty())))
    }

    /// A nullable URL (http, https or a site-relative path).
    pub fn nullable_url(&mut self, key: &str) -> Option<Option<Option<String>>> {
        let v = self.nullable_string(key, 500)?;
        if let Some(Some(url)) = &v
            && !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with('/'))
        {
            self.add(key, msg::INVALID_URL);
            return None;
        }
        Some(v)
    }

    /// An e-mail address (trimmed, not blank).
    pub fn email(&mut self, key: &str) -> Option<Option<String>> {
        match self.string(key, MAX_EMAIL_LEN, false)? {
            Some(e) if !is_valid_email(&e) => {
                self.add(key, msg::INVALID_EMAIL);
                None
            }
            read => Some(read),
        }
    }

    /// An integer in `min..=max`.
    pub fn int(&mut self, key: &str, min: i64, max: i64) -> Option<Option<i64>> {
        let n = match self.get(key) {
            None => return Some(None),
            Some(Value::Null) => {
                self.add(key, msg::NOT_NULL);
                return None;
            }
            Some(v) => integer(v),
        };
        match n {
            None => {
                self.add(key, msg::NOT_INTEGER);
                None
            }
            Some(n) if n < min => {
                self.add(key, msg::min_value(min));
                None
            }
            Some(n) if n > max => {
                self.add(key, msg::max_value(max));
                None
            }
            Some(n) => Some(Some(n)),
        }
    }

    /// A nullable integer in `min..=max`.
    pub fn nullable_int(&mut self, key: &str, min: i64, max: i64) -> Option<Option<Option<i64>>> {
        self.nullable(key, |f| f.int(key, min, max))
    }

    /// The id of a related object: a positive integer.
    pub fn id(&mut self, key: &str) -> Option<Option<i64>> {
        match self.get(key) {
            None => Some(None),
            Some(Value::Null) => {
                self.add(key, msg::NOT_NULL);
                None
            }
            Some(v) => match integer(v).filter(|id| *id > 0) {
                Some(id) => Some(Some(id)),
                None => {
                    self.add(key, msg::NOT_INTEGER);
                    None
                }
            },
        }
    }

    /// A decimal with at most two places in `min..=max` (a JSON string, as DRF writes them,
    /// or a number).
    pub fn decimal(&mut self, key: &str, min: Decimal, max: Decimal) -> Option<Option<Decimal>> {
        let d = match self.get(key) {
            None => return Some(None),
            Some(Value::Null) => {
                self.add(key, msg::NOT_NULL);
                return None;
            }
            Some(v) => decimal(v),
        };
        match d {
            None => {
                self.add(key, msg::NOT_NUMBER);
                None
            }
            Some(d) if d.normalize().scale() > 2 => {
                self.add(key, msg::max_decimal_places(2));
                None
            }
            Some(d) if d < min => {
                self.add(key, msg::min_value(min));
                None
            }
            Some(d) if d > max => {
                self.add(key, msg::max_value(max));
                None
            }
            Some(d) => Some(Some(d)),
        }
    }

    /// A boolean (`true`/`false`, or DRF's accepted strings and 0/1).
    pub fn boolean(&mut self, key: &str) -> Option<Option<bool>> {
        let b = match self.get(key) {
            None => return Some(None),
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            Some(Value::String(s)) => parse_bool(s),
            Some(_) => None,
        };
        match b {
            Some(b) => Some(Some(b)),
            None => {
                self.add(key, msg::NOT_BOOLEAN);
                None
            }
        }
    }

    /// A nullable ISO 8601 date-time.
    pub fn datetime(&mut self, key: &str) -> Option<Option<Option<DateTime<Utc>>>> {
        match self.get(key) {
            None => Some(None),
            Some(Value::Null) => Some(Some(None)),
            Some(v) => match v.as_str().and_then(parse_datetime) {
                Some(d) => Some(Some(Some(d))),
                None => {
                    self.add(key, msg::INVALID_DATETIME);
                    None
                }
            },
        }
    }

    /// Ends reading: the errors, if any.
    pub fn finish(self) -> Result<(), FieldErrors> {
        self.errors.into_result(())
    }

    /// Ends reading with the value of required field `key`: the errors if any, else the
    /// value (a missing value with no error recorded is reported as required).
    pub fn finish_with<T>(mut self, key: &str, value: Option<T>) -> Result<T, FieldErrors> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            Some(_) => Err(self.errors),
            None => {
                if self.errors.is_empty() {
                    self.add(key, msg::REQUIRED);
                }
                Err(self.errors)
            }
        }
    }
}

/// DRF's accepted spellings of a boolean.
fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Query-string parameters. Each takes the parameter's raw value (`None` when absent); an
/// absent or empty value is no filter, a bad one records an error naming the parameter.
pub mod param {
    use chrono::{DateTime, Utc};

    use super::{FieldErrors, msg, parse_bool};
    use crate::query::parse_datetime;

    fn present(raw: Option<&str>) -> Option<&str> {
        raw.map(str::trim).filter(|s| !s.is_empty())
    }

    /// A related object's id (`show=3`).
    pub fn id(key: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<i64> {
        let raw = present(raw)?;
        let id = crate::query::path_id(raw);
        if id.is_none() {
            errors.add(key, msg::INVALID_CHOICE);
        }
        id
    }

    /// A date-time (what Django's `DateTimeField` accepts from a query string).
    pub fn datetime(
        key: &str,
        raw: Option<&str>,
        errors: &mut FieldErrors,
    ) -> Option<DateTime<Utc>> {
        let raw = present(raw)?;
        let parsed = parse_datetime(raw);
        if parsed.is_none() {
            errors.add(key, msg::INVALID_DATETIME_PARAM);
        }
        parsed
    }

    /// One of `T`'s values.
    pub fn choice<T: std::str::FromStr>(
        key: &str,
        raw: Option<&str>,
        errors: &mut FieldErrors,
    ) -> Option<T> {
        let raw = present(raw)?;
        let choice = raw.parse().ok();
        if choice.is_none() {
            errors.add(key, msg::not_a_choice_param(raw));
        }
        choice
    }

    /// Text, trimmed, of at most `max` characters.
    pub fn text(
        key: &str,
        raw: Option<&str>,
        max: usize,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        let raw = present(raw)?;
        if raw.chars().count() > max {
            errors.add(key, msg::max_length(max));
            return None;
        }
        Some(raw.to_string())
    }

    /// A boolean (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
    pub fn boolean(key: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<bool> {
        let raw = present(raw)?;
        let b = parse_bool(raw);
        if b.is_none() {
            errors.add(key, msg::NOT_BOOLEAN);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(body: Value) -> Map<String, Value> {
        object(body).unwrap()
    }

    #[test]
    fn a_body_that_is_not_an_object_names_its_python_type() {
        for (body, kind) in [
            (json!([]), "list"),
            (json!("x"), "str"),
            (json!(1), "int"),
            (json!(1.5), "float"),
            (json!(true), "bool"),
            (Value::Null, "NoneType"),
        ] {
            let e = object(body).unwrap_err();
            assert_eq!(
                e.0["non_field_errors"],
                vec![format!(
                    "Invalid data. Expected a dictionary, but got {kind}."
                )]
            );
        }
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let obj = read(
            json!({"name": "  ", "n": "x", "price": "1.005", "ok": "yes", "at": 5,
                              "email": "a@b", "id": 0, "gone": null}),
        );
        let mut f = Fields::new(&obj);
        assert_eq!(f.string("name", 10, false), None);
        assert_eq!(f.int("n", 0, 10), None);
        assert_eq!(
            f.decimal("price", Decimal::ZERO, Decimal::ONE_HUNDRED),
            None
        );
        assert_eq!(f.boolean("ok"), Some(Some(true)));
        assert_eq!(f.datetime("at"), None);
        assert_eq!(f.email("email"), None);
        assert_eq!(f.id("id"), None);
        assert_eq!(f.string("gone", 10, true), None);
        let missing = f.string("missing", 10, false);
        assert_eq!(f.required("missing", missing), None);
        let e = f.finish().unwrap_err();
        let expect = json!({
            "name": [msg::BLANK], "n": [msg::NOT_INTEGER], "price": [msg::max_decimal_places(2)],
            "at": [msg::INVALID_DATETIME], "email": [msg::INVALID_EMAIL], "id": [msg::NOT_INTEGER],
            "gone": [msg::NOT_NULL], "missing": [msg::REQUIRED],
        });
        assert_eq!(serde_json::to_value(&e).unwrap(), expect);
    }

    #[test]
    fn ranges_and_lengths_quote_their_bounds() {
        let obj = read(json!({"a": 0, "b": 11, "c": "-0.01", "d": "abcd", "e": 2.0}));
        let mut f = Fields::new(&obj);
        assert_eq!(f.int("a", 1, 10), None);
        assert_eq!(f.int("b", 1, 10), None);
        assert_eq!(f.decimal("c", Decimal::ZERO, Decimal::ONE), None);
        assert_eq!(f.string("d", 3, false), None);
        assert_eq!(f.int("e", 1, 10), Some(Some(2)));
        assert_eq!(
            serde_json::to_value(f.errors).unwrap(),
            json!({
                "a": ["Ensure this value is greater than or equal to 1."],
                "b": ["Ensure this value is less than or equal to 10."],
                "c": ["Ensure this value is greater than or equal to 0."],
                "d": ["Ensure this field has no more than 3 characters."],
            })
        );
    }

    #[test]
    fn nested_items_prefix_their_fields_and_nullables_take_null() {
        let obj = read(json!({"q": "x", "note": null, "url": "ftp://x"}));
        let mut f = Fields::nested(&obj, "tickets[2]".into());
        assert_eq!(f.int("q", 1, 5), None);
        assert_eq!(f.nullable_string("note", 10), Some(Some(None)));
        assert_eq!(f.nullable_url("url"), None);
        let e = f.finish().unwrap_err();
        assert_eq!(e.0["tickets[2].q"], vec![msg::NOT_INTEGER]);
        assert_eq!(e.0["tickets[2].url"], vec![msg::INVALID_URL]);
    }

    #[test]
    fn query_parameters_ignore_empty_values_and_name_bad_ones() {
        let mut e = FieldErrors::default();
        assert_eq!(param::id("show", Some(" "), &mut e), None);
        assert_eq!(param::id("show", Some("7"), &mut e), Some(7));
        assert_eq!(param::id("venue", Some("0"), &mut e), None);
        assert_eq!(
            param::boolean("checked_in", Some("no"), &mut e),
            Some(false)
        );
        assert_eq!(param::boolean("flag", Some("maybe"), &mut e), None);
        assert_eq!(param::datetime("after", Some("yesterday"), &mut e), None);
        assert_eq!(param::text("q", Some("abcd"), 3, &mut e), None);
        assert_eq!(param::choice::<u8>("n", Some("x"), &mut e), None);
        assert_eq!(
            serde_json::to_value(e).unwrap(),
            json!({
                "venue": [msg::INVALID_CHOICE], "flag": [msg::NOT_BOOLEAN],
                "after": [msg::INVALID_DATETIME_PARAM], "q": [msg::max_length(3)],
                "n": ["Select a valid choice. x is not one of the available choices."],
            })
        );
    }

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "first.last+tag@example.com",
            "x@sub.domain.org",
            "ü@exämple.de",
        ] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@",
            "@b.com",
            "a@b",
            "a b@c.com",
            "a@b..com",
            "a@-b.com",
            "a@b.c",
            "a@1.23",
            ".a@b.com",
            "no-at.example.com",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
        assert!(!is_valid_email(&format!("{}@example.com", "a".repeat(250))));
    }
}
