//! The query strings of the public lists: the show list's filters and pagination, read with
//! [`crate::validate::param`].
//!
//! Bad input must give a DRF-style 400 naming the parameter, never a 500 and never a
//! silently ignored filter.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::validate::{msg, param};

/// Largest `page_size` a client may ask for (DRF's `max_page_size`).
pub const MAX_PAGE_SIZE: u32 = 100;
/// `page_size` when `?page=` is given without one.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Longest search text accepted.
pub const MAX_SEARCH_LEN: usize = 200;

pub use crate::validate::FieldErrors;
/// A requested page of a paginated list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number.
    pub number: u32,
    /// Rows per page.
    pub size: u32,
}

impl PageRequest {
    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        i64::from(self.number - 1) * i64::from(self.size)
    }
}

/// Filters of `GET /api/v1/shows/`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShowFilters {
    /// `start_time__gt`.
    pub start_time_gt: Option<DateTime<Utc>>,
    /// `start_time__lt`.
    pub start_time_lt: Option<DateTime<Utc>>,
    /// `slug` (exact).
    pub slug: Option<String>,
    /// `city` (case-insensitive exact).
    pub city: Option<String>,
    /// `producer` id.
    pub producer: Option<i64>,
    /// `venue` id.
    pub venue: Option<i64>,
    /// `page` / `page_size`; `None` means the bare array of every match.
    pub page: Option<PageRequest>,
}

impl ShowFilters {
    /// A stable text form, used as the cache key of the filtered list.
    pub fn cache_key(&self) -> String {
        let t = |d: &Option<DateTime<Utc>>| {
            d.map(|d| d.timestamp_micros().to_string())
                .unwrap_or_default()
        };
        let page = self
            .page
            .map(|p| format!("{}x{}", p.number, p.size))
            .unwrap_or_default();
        format!(
            "gt={}&lt={}&slug={}&city={}&producer={}&venue={}&page={}",
            t(&self.start_time_gt),
            t(&self.start_time_lt),
            self.slug.as_deref().unwrap_or(""),
            self.city
                .as_deref()
                .map(str::to_lowercase)
                .unwrap_or_default(),
            self.producer.map(|p| p.to_string()).unwrap_or_default(),
            self.venue.map(|p| p.to_string()).unwrap_or_default(),
            page
        )
    }
}

/// Parses the show list's query pairs. Unknown parameters are ignored, as django-filter does.
pub fn parse_show_filters<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<ShowFilters, FieldErrors> {
    let mut f = ShowFilters::default();
    let mut errors = FieldErrors::default();
    let mut page: Option<&str> = None;
    let mut page_size: Option<&str> = None;
    for (key, value) in pairs {
        match key {
            "start_time__gt" => f.start_time_gt = param::datetime(key, Some(value), &mut errors),
            "start_time__lt" => f.start_time_lt = param::datetime(key, Some(value), &mut errors),
            "slug" if !value.is_empty() => f.slug = Some(value.to_string()),
            "city" if !value.is_empty() => f.city = Some(value.to_string()),
            "producer" => f.producer = param::id(key, Some(value), &mut errors),
            "venue" => f.venue = param::id(key, Some(value), &mut errors),
            "page" => page = Some(value),
            "page_size" => page_size = Some(value),
            _ => {}
        }
    }
    f.page = parse_page(page, page_size, &mut errors);
    errors.into_result(f)
}

/// Parses `page`/`page_size`: `None` when neither is present.
pub fn parse_page(
    page: Option<&str>,
    page_size: Option<&str>,
    errors: &mut FieldErrors,
) -> Option<PageRequest> {
    if page.is_none() && page_size.is_none() {
        return None;
    }
    let number = match page.map(str::trim) {
        None | Some("") => 1,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                errors.add("page", msg::INVALID_PAGE);
                1
            }
        },
    };
    let size = match page_size.map(str::trim) {
        None | Some("") => DEFAULT_PAGE_SIZE,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            Ok(0) => {
                errors.add("page_size", msg::min_value(1));
                DEFAULT_PAGE_SIZE
            }
            Ok(_) => {
                errors.add("page_size", msg::max_value(MAX_PAGE_SIZE));
                DEFAULT_PAGE_SIZE
            }
            Err(_) => {
                errors.add("page_size", msg::NOT_INTEGER);
                DEFAULT_PAGE_SIZE
            }
        },
    };
    Some(PageRequest { number, size })
}

/// Parses a path id such as the `{id}` of `/api/v1/shows/{id}/`; `None` if not a positive integer.
pub fn path_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

/// Accepts what Django's `DateTimeField` accepts from a query string: RFC 3339 with offset or
/// `Z`, a naive date-time (taken as UTC, the original's `TIME_ZONE`), or a bare date.
/// A `+` in an offset may arrive decoded as a space; that is tolerated.
pub fn parse_datetime(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    let repaired;
    let s = if s.len() > 19 && s.as_bytes().get(s.len() - 6) == Some(&b' ') {
        repaired = format!("{}+{}", &s[..s.len() - 6], &s[s.len() - 5..]);
        repaired.as_str()
    } else {
        s
    };
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seeds_filters() {
        let f = parse_show_filters([("start_time__gt", "2025-01-01T00:00:00Z"), ("slug", "jazz")])
            .expect("valid");
        assert_eq!(
            f.start_time_gt.map(|d| d.to_rfc3339()).as_deref(),
            Some("2025-01-01T00:00:00+00:00")
        );
        assert_eq!(f.slug.as_deref(), Some("jazz"));
        assert_eq!(f.page, None);
    }

    #[test]
    fn accepts_django_datetime_forms() {
        for s in [
            "2025-01-01",
            "2025-01-01T10:00",
            "2025-01-01 10:00:00",
            "2025-01-01T10:00:00.123",
            "2025-01-01T10:00:00+02:00",
            "2025-01-01T10:00:00 02:00",
        ] {
            assert!(parse_datetime(s).is_some(), "{s}");
        }
        assert_eq!(
            parse_datetime("2025-01-01T10:00:00 02:00"),
            parse_datetime("2025-01-01T08:00:00Z")
        );
        for s in ["tomorrow", "2025-13-01", "", "2025-01-01T25:00"] {
            assert!(parse_datetime(s).is_none(), "{s}");
        }
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let e = parse_show_filters([("start_time__gt", "yesterday"), ("producer", "x")])
            .expect_err("invalid");
        assert_eq!(e.0["start_time__gt"], vec!["Enter a valid date/time."]);
        assert!(e.0.contains_key("producer"));
    }

    #[test]
    fn pagination_bounds() {
        let f = parse_show_filters([("page", "2")]).expect("valid");
        assert_eq!(
            f.page,
            Some(PageRequest {
                number: 2,
                size: DEFAULT_PAGE_SIZE
            })
        );
        assert_eq!(f.page.map(|p| p.offset()), Some(20));
        let e = parse_show_filters([("page_size", "100000")]).expect_err("too big");
        assert_eq!(
            e.0["page_size"],
            vec!["Ensure this value is less than or equal to 100."]
        );
        assert!(parse_show_filters([("page", "0")]).is_err());
        assert!(parse_show_filters([("page", "-1")]).is_err());
        assert!(parse_show_filters([("page_size", "abc")]).is_err());
    }

    #[test]
    fn cache_keys_differ_by_filter() {
        let a = parse_show_filters([("city", "Austin")])
            .expect("valid")
            .cache_key();
        let b = parse_show_filters([("city", "austin")])
            .expect("valid")
            .cache_key();
        let c = parse_show_filters([("city", "Dallas")])
            .expect("valid")
            .cache_key();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn path_ids_are_positive_integers() {
        assert_eq!(path_id("12"), Some(12));
        assert_eq!(path_id("0"), None);
        assert_eq!(path_id("abc"), None);
        assert_eq!(path_id("99999999999999999999"), None);
    }
}
