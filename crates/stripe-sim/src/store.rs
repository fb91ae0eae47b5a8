//! The in-memory Stripe "database" and its state transitions. Pure and synchronous: callers
//! (`state.rs`) hold the lock only around these calls and emit webhooks afterwards.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::{
    error::ApiError,
    ids,
    model::{Account, Balances, PaymentIntent, Refund, Session, SessionStatus},
};

/// An onboarding link's redirect targets.
#[derive(Debug, Clone)]
pub struct AccountLinkInfo {
    /// Where onboarding sends the user when done.
    pub return_url: Option<String>,
    /// Where an expired link sends the user (to ask for a fresh link).
    pub refresh_url: Option<String>,
    /// Unix time after which the link is stale.
    pub expires_at: i64,
}

/// Result of visiting an onboarding link.
#[derive(Debug, Clone)]
pub enum Onboarding {
    /// Onboarding is done (now or before); redirect to `return_url`.
    Done {
        /// The account after onboarding.
        account: Account,
        /// Whether this visit changed it (an `account.updated` event is due).
        changed: bool,
        /// Redirect target.
        return_url: Option<String>,
    },
    /// The link expired; redirect to `refresh_url`.
    Expired {
        /// Redirect target.
        refresh_url: Option<String>,
    },
}

/// The validated parameters of `POST /v1/refunds`.
#[derive(Debug, Clone, Default)]
pub struct NewRefund {
    /// `payment_intent`, or the intent found from `charge`.
    pub payment_intent: Option<String>,
    /// `charge`.
    pub charge: Option<String>,
    /// `amount`; default: everything not yet refunded.
    pub amount: Option<i64>,
    /// `reason`.
    pub reason: Option<String>,
    /// `metadata[...]`.
    pub metadata: Map<String, Value>,
    /// `reverse_transfer`: take the refund back from the destination account.
    pub reverse_transfer: bool,
}

/// Every simulated object.
#[derive(Debug, Default)]
pub struct Store {
    sessions: HashMap<String, Session>,
    /// `(expires_at, id)` of sessions that were open when stored, so the once-a-second sweep does
    /// not scan every session of a long load run. Entries of sessions completed or expired
    /// meanwhile are skipped when their time comes.
    expiry_queue: BTreeSet<(i64, String)>,
    payment_intents: HashMap<String, PaymentIntent>,
    charges: HashMap<String, String>,
    refunds: HashMap<String, Refund>,
    accounts: HashMap<String, Account>,
    links: HashMap<String, AccountLinkInfo>,
    balances: Balances,
}

fn same_account(a: Option<&str>, b: Option<&str>) -> bool {
    a == b
}

impl Store {
    /// Stores a new session.
    pub fn insert_session(&mut self, s: Session) {
        if s.status == SessionStatus::Open {
            self.expiry_queue
                .insert((s.params.expires_at, s.id.clone()));
        }
        self.sessions.insert(s.id.clone(), s);
    }

    /// Number of sessions (all statuses).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// A session visible to `account` (`None` = the platform).
    pub fn session(&self, id: &str, account: Option<&str>) -> Result<&Session, ApiError> {
        self.sessions
            .get(id)
            .filter(|s| same_account(s.account.as_deref(), account))
            .ok_or_else(|| ApiError::no_such("checkout.session", "session", id))
    }

    /// A session regardless of account, for the hosted pages.
    pub fn session_any(&self, id: &str) -> Option<&Session> {
        self.sessions.get(id)
    }

    /// `POST /v1/checkout/sessions/{id}/expire`: only open sessions can be expired.
    pub fn expire_session(&mut self, id: &str, account: Option<&str>) -> Result<Session, ApiError> {
        self.session(id, account)?;
        let s = self
            .sessions
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("checkout.session", "session", id))?;
        if s.status != SessionStatus::Open {
            return Err(ApiError::invalid_state(format!(
                "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout \
                 Session has a status of \"{}\".",
                s.status.as_str()
            )));
        }
        s.status = SessionStatus::Expired;
        Ok(s.clone())
    }

    /// Expires every open session whose `expires_at` has passed, like Stripe's own expiry.
    pub fn expire_due(&mut self, now: i64) -> Vec<Session> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.expiry_queue.first()
            && *at <= now
        {
            let Some((_, id)) = self.expiry_queue.pop_first() else {
                break;
            };
            if let Some(s) = self.sessions.get_mut(&id)
                && s.status == SessionStatus::Open
            {
                s.status = SessionStatus::Expired;
                due.push(s.clone());
            }
        }
        due
    }

    /// Pays a session: creates its PaymentIntent and moves the money.
    ///
    /// Returns the session and whether this call completed it (`false` when it was already
    /// complete, so callers send no second webhook).
    pub fn complete_session(&mut self, id: &str, now: i64) -> Result<(Session, bool), ApiError> {
        let s = self
            .sessions
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("checkout.session", "session", id))?;
        match s.status {
            SessionStatus::Complete => return Ok((s.clone(), false)),
            SessionStatus::Expired => {
                return Err(ApiError::invalid_state(format!(
                    "This Checkout Session ({id}) has expired and can no longer be paid."
                )));
            }
            SessionStatus::Open => {}
        }
        let p = &s.params;
        let pi = PaymentIntent {
            id: ids::payment_intent(),
            account: s.account.clone(),
            livemode: s.livemode,
            created: now,
            amount: s.amount_total,
            currency: p.currency.clone(),
            charge: ids::charge(),
            application_fee_amount: p.application_fee_amount,
            destination: p.destination.clone(),
            transfer_amount: p.transfer_amount,
            metadata: p.payment_intent_metadata.clone(),
            amount_refunded: 0,
        };
        s.status = SessionStatus::Complete;
        s.payment_intent = Some(pi.id.clone());
        let session = s.clone();

        // Where the money goes: a direct charge (Stripe-Account) lands on the connected account,
        // a destination charge is transferred to `destination`; the platform keeps the rest.
        let cur = pi.currency.as_str();
        let to_connected = pi.transferred();
        match (&pi.account, &pi.destination) {
            (Some(acct), _) | (None, Some(acct)) => {
                self.balances.credit(Some(acct), cur, to_connected);
                self.balances.credit(None, cur, pi.amount - to_connected);
            }
            (None, None) => self.balances.credit(None, cur, pi.amount),
        }
        self.charges.insert(pi.charge.clone(), pi.id.clone());
        self.payment_intents.insert(pi.id.clone(), pi);
        Ok((session, true))
    }

    /// A PaymentIntent visible to `account`.
    pub fn payment_intent(
        &self,
        id: &str,
        account: Option<&str>,
    ) -> Result<&PaymentIntent, ApiError> {
        self.payment_intents
            .get(id)
            .filter(|p| same_account(p.account.as_deref(), account))
            .ok_or_else(|| ApiError::no_such("payment_intent", "intent", id))
    }

    /// `POST /v1/refunds`.
    pub fn create_refund(
        &mut self,
        req: NewRefund,
        account: Option<&str>,
        now: i64,
    ) -> Result<Refund, ApiError> {
        let pi_id = match (&req.payment_intent, &req.charge) {
            (Some(pi), _) => pi.clone(),
            (None, Some(ch)) => self
                .charges
                .get(ch)
                .cloned()
                .ok_or_else(|| ApiError::no_such("charge", "charge", ch))?,
            (None, None) => {
                return Err(ApiError::invalid(
                    "payment_intent",
                    "One of the following params should be provided for this request: \
                     payment_intent or charge.",
                ));
            }
        };
        let pi = self
            .payment_intents
            .get_mut(&pi_id)
            .filter(|p| same_account(p.account.as_deref(), account))
            .ok_or_else(|| ApiError::no_such("payment_intent", "payment_intent", &pi_id))?;
        let remaining = pi.amount - pi.amount_refunded;
        if remaining <= 0 {
            let mut e =
                ApiError::invalid_state(format!("Charge {} has already been refunded.", pi.charge));
            e.code = Some("charge_already_refunded");
            return Err(e);
        }
        let amount = req.amount.unwrap_or(remaining);
        if amount <= 0 {
            return Err(ApiError::invalid("amount", "Invalid positive integer"));
        }
        if amount > remaining {
            let mut e = ApiError::invalid(
                "amount",
                format!(
                    "Refund amount ({}) is greater than unrefunded amount on charge ({}).",
                    money(amount, &pi.currency),
                    money(remaining, &pi.currency)
                ),
            );
            e.code = Some("amount_too_large");
            return Err(e);
        }
        pi.amount_refunded += amount;
        let refund = Refund {
            id: ids::refund(),
            created: now,
            amount,
            currency: pi.currency.clone(),
            payment_intent: pi.id.clone(),
            charge: pi.charge.clone(),
            reason: req.reason,
            metadata: req.metadata,
        };

        // Who pays the refund back: the account that kept the money (direct charge), else the
        // platform, which can claw back the transferred share with `reverse_transfer`.
        let cur = pi.currency.clone();
        match (&pi.account, &pi.destination) {
            (Some(acct), _) => self.balances.credit(Some(acct), &cur, -amount),
            (None, Some(dest)) if req.reverse_transfer && pi.amount > 0 => {
                let back = amount * pi.transferred() / pi.amount;
                self.balances.credit(Some(dest), &cur, -back);
                self.balances.credit(None, &cur, -(amount - back));
            }
            _ => self.balances.credit(None, &cur, -amount),
        }
        self.refunds.insert(refund.id.clone(), refund.clone());
        Ok(refund)
    }

    /// A refund by id.
    pub fn refund(&self, id: &str) -> Result<&Refund, ApiError> {
        self.refunds
            .get(id)
            .ok_or_else(|| ApiError::no_such("refund", "refund", id))
    }

    /// Stores a new connected account.
    pub fn insert_account(&mut self, a: Account) {
        self.accounts.insert(a.id.clone(), a);
    }

    /// A connected account.
    pub fn account(&self, id: &str) -> Result<&Account, ApiError> {
        self.accounts
            .get(id)
            .ok_or_else(|| ApiError::no_such("account", "account", id))
    }

    /// Whether a connected account exists.
    pub fn has_account(&self, id: &str) -> bool {
        self.accounts.contains_key(id)
    }

    /// Remembers the latest onboarding link of an account (a new link replaces the old one).
    pub fn set_link(&mut self, account: &str, link: AccountLinkInfo) {
        self.links.insert(account.to_owned(), link);
    }

    /// Visiting `/connect/onboard/{acct}`: marks onboarding done unless the link is stale.
    pub fn onboard(&mut self, account: &str, now: i64) -> Option<Onboarding> {
        let link = self.links.get(account).cloned();
        let a = self.accounts.get_mut(account)?;
        if let Some(l) = &link
            && now > l.expires_at
            && !a.details_submitted
        {
            return Some(Onboarding::Expired {
                refresh_url: l.refresh_url.clone(),
            });
        }
        let changed = !a.details_submitted;
        a.details_submitted = true;
        Some(Onboarding::Done {
            account: a.clone(),
            changed,
            return_url: link.and_then(|l| l.return_url),
        })
    }

    /// Balance by currency of an account (`None` = platform).
    pub fn balance(&self, account: Option<&str>) -> BTreeMap<String, i64> {
        self.balances.of(account)
    }
}

/// `$12.00`-style amount for error messages (two decimals, except zero-decimal currencies).
pub fn money(amount: i64, currency: &str) -> String {
    if crate::model::is_zero_decimal(currency) {
        format!("{amount} {}", currency.to_uppercase())
    } else {
        let sign = if amount < 0 { "-" } else { "" };
        let a = amount.abs();
        let symbol = match currency {
            "usd" | "cad" | "aud" => "$".to_owned(),
            "eur" => "€".to_owned(),
            "gbp" => "£".to_owned(),
            other => format!("{} ", other.to_uppercase()),
        };
        format!("{sign}{symbol}{}.{:02}", a / 100, a % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NewSession;

    fn session(id: &str, amount: i64, fee: Option<i64>, dest: Option<&str>) -> Session {
        Session {
            id: id.into(),
            account: None,
            livemode: false,
            created: 0,
            params: NewSession {
                currency: "usd".into(),
                expires_at: 100,
                application_fee_amount: fee,
                destination: dest.map(Into::into),
                ..Default::default()
            },
            amount_total: amount,
            status: SessionStatus::Open,
            payment_intent: None,
        }
    }

    #[test]
    fn destination_charge_splits_balance_and_refund_reverses() {
        let mut st = Store::default();
        st.insert_session(session("cs_1", 1000, Some(100), Some("acct_d")));
        let (s, first) = st.complete_session("cs_1", 1).unwrap();
        assert!(first);
        assert!(!st.complete_session("cs_1", 2).unwrap().1);
        assert_eq!(st.balance(None)["usd"], 100);
        assert_eq!(st.balance(Some("acct_d"))["usd"], 900);
        let pi = s.payment_intent.unwrap();
        let req = NewRefund {
            payment_intent: Some(pi.clone()),
            amount: Some(500),
            reverse_transfer: true,
            ..Default::default()
        };
        st.create_refund(req, None, 3).unwrap();
        assert_eq!(st.balance(Some("acct_d"))["usd"], 450);
        assert_eq!(st.balance(None)["usd"], 50);
        let too_much = NewRefund {
            payment_intent: Some(pi.clone()),
            amount: Some(501),
            ..Default::default()
        };
        assert_eq!(
            st.create_refund(too_much, None, 4)
                .unwrap_err()
                .param
                .as_deref(),
            Some("amount")
        );
        st.create_refund(
            NewRefund {
                payment_intent: Some(pi.clone()),
                ..Default::default()
            },
            None,
            5,
        )
        .unwrap();
        let again = st.create_refund(
            NewRefund {
                payment_intent: Some(pi),
                ..Default::default()
            },
            None,
            6,
        );
        assert_eq!(again.unwrap_err().code, Some("charge_already_refunded"));
    }

    #[test]
    fn expiry_rules() {
        let mut st = Store::default();
        st.insert_session(session("cs_a", 1, None, None));
        st.insert_session(session("cs_b", 1, None, None));
        assert_eq!(st.expire_due(99).len(), 0);
        st.complete_session("cs_b", 1).unwrap();
        assert!(st.expire_session("cs_b", None).is_err());
        let due = st.expire_due(100);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, "cs_a");
        assert!(st.complete_session("cs_a", 101).is_err());
        assert_eq!(
            st.session("cs_a", Some("acct_x")).unwrap_err().code,
            Some("resource_missing")
        );
    }

    #[test]
    fn money_formats_like_stripe() {
        assert_eq!(money(1234, "usd"), "$12.34");
        assert_eq!(money(500, "jpy"), "500 JPY");
    }
}
