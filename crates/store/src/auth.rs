//! Users, passwords and DRF-style tokens (`Authorization: Token <key>`).
//!
//! A token is 20 random bytes in hex (40 characters, the length of DRF's keys). Each login
//! creates its own token so that one client logging out does not log out the others (the
//! load plans log in many users with the same account).

use std::sync::OnceLock;

use argon2::{
    Argon2, PasswordHash, PasswordVerifier,
    password_hash::rand_core::{OsRng, RngCore},
};
use serde::Serialize;
use sqlx::PgPool;

use crate::StoreError;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Primary key.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Staff (Django admin) user.
    pub is_staff: bool,
}

/// The producer a user acts for.
#[derive(Debug, Clone, Serialize)]
pub struct ProducerAccount {
    /// Producer id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// URL slug.
    pub slug: String,
    /// Stripe Connect account, once created.
    pub stripe_account_id: Option<String>,
    /// Whether Stripe onboarding was completed.
    pub stripe_onboarding_complete: bool,
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    /// The user.
    pub user: User,
    /// Their producer, if they are a producer member.
    pub producer: Option<ProducerAccount>,
}

struct PrincipalRow {
    id: i64,
    username: String,
    email: String,
    first_name: String,
    last_name: String,
    is_staff: bool,
    producer_id: Option<i64>,
    producer_name: Option<String>,
    producer_slug: Option<String>,
    stripe_account_id: Option<String>,
    stripe_onboarding_complete: Option<bool>,
}

impl PrincipalRow {
    fn into_principal(self) -> Principal {
        let producer = match (self.producer_id, self.producer_name, self.producer_slug) {
            (Some(id), Some(name), Some(slug)) => Some(ProducerAccount {
                id,
                name,
                slug,
                stripe_account_id: self.stripe_account_id,
                stripe_onboarding_complete: self.stripe_onboarding_complete.unwrap_or(false),
            }),
            _ => None,
        };
        Principal {
            user: User {
                id: self.id,
                username: self.username,
                email: self.email,
                first_name: self.first_name,
                last_name: self.last_name,
                is_staff: self.is_staff,
            },
            producer,
        }
    }
}

/// What a login attempt needs: the user id and its stored hash, for an active user.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User id.
    pub user_id: i64,
    /// Argon2 PHC string.
    pub password_hash: String,
}

/// The active user named `username` (case-insensitive, as the unique index), if any.
pub async fn credentials(pool: &PgPool, username: &str) -> Result<Option<Credentials>, StoreError> {
    Ok(sqlx::query_as!(
        Credentials,
        "SELECT id AS user_id, password_hash FROM users WHERE lower(username) = lower($1) AND is_active",
        username
    )
    .fetch_optional(pool)
    .await?)
}

/// Checks `password` against an Argon2 PHC string. CPU-heavy (tens of milliseconds): call it
/// from `spawn_blocking`. A malformed hash never matches.
pub fn verify_password(password_hash: &str, password: &str) -> bool {
    PasswordHash::new(password_hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Burns the same CPU as a real verification, for unknown usernames: without it the response
/// time would tell an attacker which usernames exist.
pub fn verify_against_dummy(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(hash) =
        DUMMY.get_or_init(|| crate::seed::hash_password("pique-dummy-password").ok())
    {
        let _ = verify_password(hash, password);
    }
}

/// A fresh random token key: 20 bytes from the OS RNG, hex-encoded (40 characters).
pub fn new_token_key() -> String {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a token for `user_id`, records the login time, and returns the token with the
/// user's principal.
pub async fn create_token(pool: &PgPool, user_id: i64) -> Result<(String, Principal), StoreError> {
    let key = new_token_key();
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "INSERT INTO auth_tokens (key, user_id) VALUES ($1, $2)",
        key,
        user_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("UPDATE users SET last_login = now() WHERE id = $1", user_id)
        .execute(&mut *tx)
        .await?;
    let principal = principal(&mut *tx, None, Some(user_id))
        .await?
        .ok_or(StoreError::NotFound)?;
    tx.commit().await?;
    Ok((key, principal))
}

/// The active user owning token `key`, with their producer, in one query.
pub async fn principal_for_token(
    pool: &PgPool,
    key: &str,
) -> Result<Option<Principal>, StoreError> {
    principal(pool, Some(key), None).await
}

/// The active user with token `key`, or the active user `user_id`, with their producer, in
/// one query.
async fn principal<'c>(
    db: impl sqlx::PgExecutor<'c>,
    key: Option<&str>,
    user_id: Option<i64>,
) -> Result<Option<Principal>, StoreError> {
    let row = sqlx::query_as!(
        PrincipalRow,
        r#"SELECT u.id, u.username, u.email, u.first_name, u.last_name, u.is_staff,
                  p.id AS "producer_id?", p.name AS "producer_name?", p.slug AS "producer_slug?",
                  p.stripe_account_id AS "stripe_account_id?", p.stripe_onboarding_complete AS "stripe_onboarding_complete?"
             FROM users u LEFT JOIN producer_members m ON m.user_id = u.id LEFT JOIN producers p ON p.id = m.producer_id
            WHERE u.is_active AND (u.id = $2 OR u.id = (SELECT t.user_id FROM auth_tokens t WHERE t.key = $1))"#,
        key,
        user_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(PrincipalRow::into_principal))
}

/// Deletes token `key` (logout). Returns whether it existed.
pub async fn delete_token(pool: &PgPool, key: &str) -> Result<bool, StoreError> {
    let done = sqlx::query!("DELETE FROM auth_tokens WHERE key = $1", key)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_keys_are_40_hex_and_distinct() {
        let a = new_token_key();
        let b = new_token_key();
        assert_eq!(a.len(), 40);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn verifies_argon2_hashes() {
        let hash = crate::seed::hash_password("secret").expect("hash");
        assert!(verify_password(&hash, "secret"));
        assert!(!verify_password(&hash, "Secret"));
        assert!(!verify_password("not a hash", "secret"));
    }
}
