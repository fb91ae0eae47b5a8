//! The resources the public API serves, shaped as the original's DRF serializers shape them:
//! decimals as two-place strings, times as ISO 8601 with offset, nested venue and producer.
//!
//! With the `sqlx` feature the flat types also derive `sqlx::FromRow`, so `pique-store` can
//! read them straight from a query.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Money;

/// A venue as listed by `/api/v1/venues/` and nested in a show's detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Venue {
    /// Primary key.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Street address.
    pub address: String,
    /// City (the `active-cities` key).
    pub city: String,
    /// State or region.
    pub state: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO country code.
    pub country: String,
    /// Seated or standing capacity, if known.
    pub capacity: Option<i32>,
}

/// A performer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Performer {
    /// Primary key.
    pub id: i64,
    /// Stage name.
    pub name: String,
    /// Biography.
    pub bio: String,
    /// Image URL.
    pub image: Option<String>,
    /// Website.
    pub website: Option<String>,
}

/// The performer fields repeated in every show of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct PerformerSummary {
    /// Primary key.
    pub id: i64,
    /// Stage name.
    pub name: String,
}

/// A producer's public profile (`/api/v1/producers/`): no Stripe ids, no contact details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ProducerPublic {
    /// Primary key.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// URL slug.
    pub slug: String,
    /// About text.
    pub description: String,
    /// Logo URL.
    pub image: Option<String>,
    /// Website.
    pub website: Option<String>,
}

/// The producer fields repeated in every show of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProducerSummary {
    /// Primary key.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// URL slug.
    pub slug: String,
}

/// A show as it appears in lists (`/api/v1/shows/`, search, featured shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ShowSummary {
    /// Primary key.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Unique URL slug (`?slug=` filter).
    pub slug: String,
    /// Description.
    pub description: String,
    /// Doors open.
    pub door_time: Option<DateTime<Utc>>,
    /// Show starts (`start_time__gt` / `__lt` filters).
    pub start_time: DateTime<Utc>,
    /// Show ends.
    pub end_time: Option<DateTime<Utc>>,
    /// IANA time zone the show's local times are shown in.
    pub time_zone: String,
    /// Free text such as "21+".
    pub age_restriction: String,
    /// Poster image URL.
    pub image: Option<String>,
    /// Banner image URL.
    pub banner_image: Option<String>,
    /// Square image URL.
    pub square_image: Option<String>,
    /// Video URL.
    pub featured_video: Option<String>,
    /// Meta ad campaign id.
    pub facebook_campaign_id: Option<String>,
    /// Always true on public endpoints.
    pub published: bool,
    /// Refund policy text.
    pub refund_policy: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Where it happens.
    pub venue: Venue,
    /// Who organises it.
    pub producer: ProducerSummary,
    /// Who performs, in billing order.
    pub performers: Vec<PerformerSummary>,
}

/// A ticket tier with its live availability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketTier {
    /// Primary key (the `ticket_id` of a checkout line).
    pub id: i64,
    /// The show it belongs to.
    pub show: i64,
    /// Name, e.g. "General Admission".
    pub name: String,
    /// Description.
    pub description: String,
    /// Price; for donation tiers the minimum amount.
    #[schema(value_type = String, example = "25.00")]
    pub price: Money,
    /// Total seats of the tier.
    pub quantity: i32,
    /// Pay-what-you-want tier: the buyer's `donation_amount` must be at least `price`.
    pub is_donation_based: bool,
    /// Most tickets of this tier in one order.
    pub max_per_order: i32,
    /// Seats a buyer can take now (quantity - sold - active holds).
    pub available: i32,
    /// `available == 0`.
    pub sold_out: bool,
}

/// A show's checkout page theming (TicketPageDesign).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct PageDesign {
    /// CSS colour.
    pub primary_color: String,
    /// CSS colour.
    pub secondary_color: String,
    /// Background image URL.
    pub background_image: Option<String>,
}

/// `/api/v1/shows/{id}/`: the summary plus ticket tiers and page design.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ShowDetail {
    /// The list fields.
    #[serde(flatten)]
    pub show: ShowSummary,
    /// Ticket tiers with live availability, in display order.
    pub tickets: Vec<TicketTier>,
    /// Theming, if the producer set one.
    pub page_design: Option<PageDesign>,
}

impl ShowDetail {
    /// The empty tiers array of a detail serialised without tiers. A JSON string cannot
    /// contain it (its quotes would be escaped), so it marks the one place to splice.
    const NO_TICKETS: &'static [u8] = br#""tickets":[]"#;

    /// The JSON of a detail from `without_tickets` (a `ShowDetail` serialised with no
    /// tiers, as the cache keeps it) and `tickets` (a JSON array of [`TicketTier`], read
    /// live): byte for byte what serialising the detail with those tiers gives, without
    /// parsing the cached part or serialising it again. `None` if `without_tickets` has no
    /// empty `tickets` array.
    pub fn splice_tickets(without_tickets: &[u8], tickets: &[u8]) -> Option<Vec<u8>> {
        let at = memchr::memmem::rfind(without_tickets, Self::NO_TICKETS)?;
        let value_at = at + Self::NO_TICKETS.len() - 2; // the `[]`
        let mut out = Vec::with_capacity(without_tickets.len() + tickets.len());
        out.extend_from_slice(&without_tickets[..value_at]);
        out.extend_from_slice(tickets);
        out.extend_from_slice(&without_tickets[value_at + 2..]);
        Some(out)
    }
}

/// An entry of `/api/v1/featured-shows/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeaturedShow {
    /// Primary key of the featuring.
    pub id: i64,
    /// Display position (ascending).
    pub position: i32,
    /// The featured show.
    pub show: ShowSummary,
}

/// An entry of `/api/v1/active-cities/`: a city with upcoming published shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ActiveCity {
    /// City name.
    pub city: String,
    /// State or region.
    pub state: String,
    /// Upcoming published shows there.
    pub show_count: i64,
}

/// DRF's `PageNumberPagination` envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Paginated<T> {
    /// Total matching rows.
    pub count: i64,
    /// URL of the next page, if any.
    pub next: Option<String>,
    /// URL of the previous page, if any.
    pub previous: Option<String>,
    /// This page's rows.
    pub results: Vec<T>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn detail(tickets: Vec<TicketTier>, page_design: Option<PageDesign>) -> ShowDetail {
        // Text fields that look like the splice marker, raw and escaped.
        let tricky = r#"say "tickets":[] and \"tickets\":[] "#.to_string();
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 20, 0, 0).single();
        ShowDetail {
            show: ShowSummary {
                id: 7,
                title: tricky.clone(),
                slug: "s".into(),
                description: tricky.clone(),
                door_time: None,
                start_time: at.unwrap_or_default(),
                end_time: None,
                time_zone: "UTC".into(),
                age_restriction: String::new(),
                image: None,
                banner_image: None,
                square_image: None,
                featured_video: None,
                facebook_campaign_id: None,
                published: true,
                refund_policy: tricky.clone(),
                created_at: at.unwrap_or_default(),
                venue: Venue {
                    id: 1,
                    name: tricky.clone(),
                    address: String::new(),
                    city: "Austin".into(),
                    state: "TX".into(),
                    postal_code: String::new(),
                    country: "US".into(),
                    capacity: None,
                },
                producer: ProducerSummary {
                    id: 2,
                    name: "P".into(),
                    slug: "p".into(),
                },
                performers: vec![PerformerSummary {
                    id: 3,
                    name: tricky.clone(),
                }],
            },
            tickets,
            page_design: page_design.map(|mut d| {
                d.background_image = Some(tricky);
                d
            }),
        }
    }

    fn tier(id: i64, available: i32) -> TicketTier {
        TicketTier {
            id,
            show: 7,
            name: "GA".into(),
            description: String::new(),
            price: Money::from_cents(2550),
            quantity: 100,
            is_donation_based: false,
            max_per_order: 20,
            available,
            sold_out: available == 0,
        }
    }

    /// The spliced detail is exactly the serialised detail, with or without a page design,
    /// with any number of tiers, whatever the text fields contain.
    #[test]
    fn spliced_detail_is_the_serialised_detail() {
        let design = PageDesign {
            primary_color: "#112233".into(),
            secondary_color: "#ffffff".into(),
            background_image: None,
        };
        for page_design in [None, Some(design)] {
            for tiers in [vec![], vec![tier(1, 85)], vec![tier(1, 85), tier(2, 0)]] {
                let cached =
                    serde_json::to_vec(&detail(vec![], page_design.clone())).expect("serialise");
                let live = serde_json::to_vec(&tiers).expect("serialise");
                let whole = serde_json::to_vec(&detail(tiers.clone(), page_design.clone()))
                    .expect("serialise");
                let spliced = ShowDetail::splice_tickets(&cached, &live).expect("marker");
                assert_eq!(
                    String::from_utf8_lossy(&spliced),
                    String::from_utf8_lossy(&whole)
                );
            }
        }
        assert_eq!(ShowDetail::splice_tickets(br#"{"id":1}"#, b"[]"), None);
    }
}
