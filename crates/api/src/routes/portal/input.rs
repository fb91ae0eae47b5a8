//! Request bodies of the portal's resources (show, tier, promo code, page design), read with
//! [`pique_core::validate::Fields`] so they share its DRF messages. Unknown fields are
//! ignored, like DRF; read-only ones (`id`, `published`...) too.

use pique_core::validate::{Fields, msg};
use pique_core::{Money, pricing::DiscountType};
use pique_store::portal::{promo_codes::PromoData, shows::ShowData, tiers::TierData};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::ApiError;

/// Applies `read` (an absent field gives `Some(None)`) onto `current`; `current` stays when
/// the field is absent. Returns `(value, had_error)`.
fn merge<T: Clone>(read: Option<Option<T>>, current: Option<T>) -> (Option<T>, bool) {
    match read {
        None => (current, true),
        Some(None) => (current, false),
        Some(Some(v)) => (Some(v), false),
    }
}

/// Whether a slug is Django's `SlugField` shape.
fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Validates a show body. `current` is the show being edited: its values fill absent
/// fields (PATCH); with `None` (create) or `full` (PUT) required fields must be present.
/// Returns the data and the venue id to check for existence.
pub fn show(
    obj: &Map<String, Value>,
    current: Option<&ShowData>,
    full: bool,
) -> Result<ShowData, ApiError> {
    let base = if full { None } else { current };
    let mut f = Fields::new(obj);
    let (title, e) = merge(f.string("title", 200, false), base.map(|c| c.title.clone()));
    let title = f.require("title", title, e);
    let slug = match f.string("slug", 100, false) {
        Some(Some(s)) if !valid_slug(&s) => {
            f.errors.add("slug", "Enter a valid \u{201c}slug\u{201d} consisting of letters, numbers, underscores or hyphens.");
            None
        }
        Some(s) => s.or_else(|| current.and_then(|c| c.slug.clone())),
        None => None,
    };
    let (description, _) = merge(
        f.string("description", 20_000, true),
        base.map(|c| c.description.clone()),
    );
    let (door_time, _) = merge(f.datetime("door_time"), base.map(|c| c.door_time));
    let (start_time, e) = merge(f.datetime("start_time"), base.map(|c| Some(c.start_time)));
    let start_time = match start_time {
        Some(Some(t)) => Some(t),
        Some(None) => {
            f.errors.add("start_time", msg::NOT_NULL);
            None
        }
        None => f.require("start_time", None, e),
    };
    let (end_time, _) = merge(f.datetime("end_time"), base.map(|c| c.end_time));
    let (time_zone, _) = merge(
        f.string("time_zone", 64, false),
        base.map(|c| c.time_zone.clone()),
    );
    let (age_restriction, _) = merge(
        f.string("age_restriction", 50, true),
        base.map(|c| c.age_restriction.clone()),
    );
    let (image, _) = merge(f.nullable_url("image"), base.map(|c| c.image.clone()));
    let (banner_image, _) = merge(
        f.nullable_url("banner_image"),
        base.map(|c| c.banner_image.clone()),
    );
    let (square_image, _) = merge(
        f.nullable_url("square_image"),
        base.map(|c| c.square_image.clone()),
    );
    let (featured_video, _) = merge(
        f.nullable_url("featured_video"),
        base.map(|c| c.featured_video.clone()),
    );
    let (facebook_campaign_id, _) = merge(
        f.nullable_string("facebook_campaign_id", 100),
        base.map(|c| c.facebook_campaign_id.clone()),
    );
    let (refund_policy, _) = merge(
        f.string("refund_policy", 5_000, true),
        base.map(|c| c.refund_policy.clone()),
    );
    let (venue, e) = merge(f.int("venue", 1, i64::MAX), base.map(|c| c.venue));
    let venue = f.require("venue", venue, e);
    if let (Some(start), Some(Some(end))) = (start_time, end_time)
        && end < start
    {
        f.errors
            .add("end_time", "End time must not be before the start time.");
    }
    if let (Some(start), Some(Some(door))) = (start_time, door_time)
        && door > start
    {
        f.errors
            .add("door_time", "Doors must open before the start time.");
    }
    let time_zone = time_zone.unwrap_or_else(|| "America/Chicago".to_string());
    if !time_zone
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b))
    {
        f.errors.add(
            "time_zone",
            format!("\"{time_zone}\" is not a valid time zone."),
        );
    }
    let errors = f.errors;
    match (title, start_time, venue) {
        (Some(title), Some(start_time), Some(venue)) if errors.is_empty() => Ok(ShowData {
            title,
            slug,
            description: description.unwrap_or_default(),
            door_time: door_time.flatten(),
            start_time,
            end_time: end_time.flatten(),
            time_zone,
            age_restriction: age_restriction.unwrap_or_default(),
            image: image.flatten(),
            banner_image: banner_image.flatten(),
            square_image: square_image.flatten(),
            featured_video: featured_video.flatten(),
            facebook_campaign_id: facebook_campaign_id.flatten(),
            refund_policy: refund_policy.unwrap_or_default(),
            venue,
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Largest tier capacity accepted.
pub const MAX_TIER_QUANTITY: i64 = 1_000_000;

/// Validates a tier body (see [`show`] for `current` and `full`).
pub fn tier(
    obj: &Map<String, Value>,
    current: Option<&TierData>,
    full: bool,
) -> Result<TierData, ApiError> {
    let base = if full { None } else { current };
    let mut f = Fields::new(obj);
    let (name, e) = merge(f.string("name", 100, false), base.map(|c| c.name.clone()));
    let name = f.require("name", name, e);
    let (description, _) = merge(
        f.string("description", 5_000, true),
        base.map(|c| c.description.clone()),
    );
    let (quantity, e) = merge(
        f.int("quantity", 0, MAX_TIER_QUANTITY),
        base.map(|c| i64::from(c.quantity)),
    );
    let quantity = f.require("quantity", quantity, e);
    let (price, e) = merge(
        f.decimal("price", Decimal::ZERO, Decimal::new(9_999_999_999, 2)),
        base.map(|c| c.price.amount()),
    );
    let price = f.require("price", price, e);
    let (is_donation_based, _) = merge(
        f.boolean("is_donation_based"),
        base.map(|c| c.is_donation_based),
    );
    let (max_per_order, _) = merge(
        f.int("max_per_order", 1, 100),
        base.map(|c| i64::from(c.max_per_order)),
    );
    let (position, _) = merge(
        f.int("position", 0, 10_000),
        base.map(|c| i64::from(c.position)),
    );
    let errors = f.errors;
    match (name, quantity, price) {
        (Some(name), Some(quantity), Some(price)) if errors.is_empty() => Ok(TierData {
            name,
            description: description.unwrap_or_default(),
            // Bounded above by the range checks.
            quantity: i32::try_from(quantity).unwrap_or(i32::MAX),
            price: Money::new(price),
            is_donation_based: is_donation_based.unwrap_or(false),
            max_per_order: max_per_order
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or(20),
            position: position.and_then(|n| i32::try_from(n).ok()).unwrap_or(0),
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Validates a promo code body (see [`show`] for `current` and `full`).
pub fn promo(
    obj: &Map<String, Value>,
    current: Option<&PromoData>,
    full: bool,
) -> Result<PromoData, ApiError> {
    let base = if full { None } else { current };
    let mut f = Fields::new(obj);
    let code = match f.string("code", 50, false) {
        Some(Some(c))
            if !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            f.errors.add(
                "code",
                "Use only letters, numbers, hyphens and underscores.",
            );
            None
        }
        read => {
            let (v, e) = merge(read, base.map(|c| c.code.clone()));
            f.require("code", v, e)
        }
    };
    let (discount_type, _) = merge(
        f.string("discount_type", 20, false),
        base.map(|c| c.discount_type.to_string()),
    );
    let discount_type = discount_type.unwrap_or_else(|| "percent".into());
    let kind = discount_type.parse::<DiscountType>();
    if kind.is_err() {
        f.errors
            .add("discount_type", msg::not_a_choice(&discount_type));
    }
    let (discount, e) = merge(
        f.decimal(
            "discount",
            Decimal::new(1, 2),
            Decimal::new(9_999_999_999, 2),
        ),
        base.map(|c| c.discount.amount()),
    );
    let discount = f.require("discount", discount, e);
    if kind == Ok(DiscountType::Percent)
        && let Some(d) = discount
        && d > Decimal::ONE_HUNDRED
    {
        f.errors
            .add("discount", "A percentage discount cannot exceed 100.");
    }
    let (max_uses, _) = merge(
        f.nullable_int("max_uses", 0, i64::from(i32::MAX)),
        base.map(|c| c.max_uses.map(i64::from)),
    );
    let (valid_from, _) = merge(f.datetime("valid_from"), base.map(|c| c.valid_from));
    let (valid_until, _) = merge(f.datetime("valid_until"), base.map(|c| c.valid_until));
    if let (Some(Some(from)), Some(Some(until))) = (valid_from, valid_until)
        && until <= from
    {
        f.errors.add("valid_until", "Must be after valid_from.");
    }
    let (is_active, _) = merge(f.boolean("is_active"), base.map(|c| c.is_active));
    let errors = f.errors;
    match (code, discount, kind) {
        (Some(code), Some(discount), Ok(discount_type)) if errors.is_empty() => Ok(PromoData {
            code,
            discount: Money::new(discount),
            discount_type,
            max_uses: max_uses.flatten().and_then(|n| i32::try_from(n).ok()),
            valid_from: valid_from.flatten(),
            valid_until: valid_until.flatten(),
            is_active: is_active.unwrap_or(true),
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// A validated page design.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignData {
    /// CSS hex colour.
    pub primary_color: String,
    /// CSS hex colour.
    pub secondary_color: String,
    /// Background image URL.
    pub background_image: Option<String>,
}

fn hex_colour(s: &str) -> bool {
    let digits = s.strip_prefix('#').unwrap_or("");
    (digits.len() == 3 || digits.len() == 6) && digits.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Validates a page design body (PUT: absent colours take the defaults).
pub fn design(obj: &Map<String, Value>) -> Result<DesignData, ApiError> {
    let mut f = Fields::new(obj);
    let colour = |f: &mut Fields<'_>, key: &str, default: &str| -> Option<String> {
        match f.string(key, 7, false)? {
            None => Some(default.to_string()),
            Some(c) if hex_colour(&c) => Some(c),
            Some(_) => {
                f.errors
                    .add(key, "Enter a valid hex colour such as #1a2b3c.");
                None
            }
        }
    };
    let primary = colour(&mut f, "primary_color", "#000000");
    let secondary = colour(&mut f, "secondary_color", "#ffffff");
    let background = f.nullable_url("background_image");
    let errors = f.errors;
    match (primary, secondary, background) {
        (Some(primary_color), Some(secondary_color), Some(bg)) if errors.is_empty() => {
            Ok(DesignData {
                primary_color,
                secondary_color,
                background_image: bg.flatten(),
            })
        }
        _ => Err(ApiError::Validation(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pique_core::validate::{FieldErrors, object};
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        object(v).expect("object")
    }

    fn field_errors(r: Result<impl std::fmt::Debug, ApiError>) -> FieldErrors {
        match r {
            Err(ApiError::Validation(e)) => e,
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn show_requires_title_start_and_venue_and_reports_all() {
        let e = field_errors(show(
            &obj(json!({"start_time": "nope", "end_time": 3})),
            None,
            true,
        ));
        assert_eq!(e.0["title"], vec![msg::REQUIRED]);
        assert_eq!(e.0["venue"], vec![msg::REQUIRED]);
        assert!(e.0["start_time"][0].starts_with("Datetime has wrong format"));
        assert!(e.0.contains_key("end_time"));
    }

    #[test]
    fn show_patch_keeps_absent_fields_and_checks_times() {
        let current = show(
            &obj(json!({"title": "A", "start_time": "2030-01-01T20:00:00Z", "venue": 1})),
            None,
            true,
        )
        .expect("valid");
        let patched =
            show(&obj(json!({"description": "d"})), Some(&current), false).expect("patch");
        assert_eq!(patched.title, "A");
        assert_eq!(patched.description, "d");
        let e = field_errors(show(
            &obj(json!({"end_time": "2029-01-01T00:00:00Z"})),
            Some(&current),
            false,
        ));
        assert!(e.0.contains_key("end_time"));
    }

    #[test]
    fn tier_and_promo_rules() {
        let e = field_errors(tier(
            &obj(json!({"name": "", "quantity": -1, "price": "1.001"})),
            None,
            true,
        ));
        assert_eq!(e.0["name"], vec!["This field may not be blank."]);
        assert_eq!(
            e.0["quantity"],
            vec!["Ensure this value is greater than or equal to 0."]
        );
        assert_eq!(
            e.0["price"],
            vec!["Ensure that there are no more than 2 decimal places."]
        );
        let t = tier(
            &obj(json!({"name": "GA", "quantity": 10, "price": "25"})),
            None,
            true,
        )
        .expect("tier");
        assert_eq!(t.max_per_order, 20);
        let e = field_errors(promo(
            &obj(json!({"code": "bad code", "discount": "150"})),
            None,
            true,
        ));
        assert!(e.0.contains_key("code"));
        assert!(e.0.contains_key("discount"));
        let p = promo(&obj(json!({"code": "SAVE10", "discount": 10})), None, true).expect("promo");
        assert_eq!(p.discount_type, DiscountType::Percent);
        assert!(p.is_active);
    }

    #[test]
    fn colours() {
        assert!(hex_colour("#abc") && hex_colour("#A1B2C3"));
        assert!(!hex_colour("red") && !hex_colour("#abcd"));
    }
}
