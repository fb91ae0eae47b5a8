//! Producers' Stripe Connect: an Express account made on first use, onboarding links, the
//! onboarding state (recorded on the producer) and the account's balance.

use pique_store::{auth::ProducerAccount, portal::stripe as accounts};

use crate::{
    Checkout, ConnectError,
    payments::{AccountBalance, AccountLink, AccountState},
};

/// An onboarding link and the account it is for.
#[derive(Debug, Clone)]
pub struct Onboarding {
    /// The producer's connected account.
    pub account_id: String,
    /// The link.
    pub link: AccountLink,
}

impl Checkout {
    /// Creates the producer's Express account on first use (storing its id), then a fresh
    /// onboarding link.
    pub async fn connect_link(
        &self,
        producer: &ProducerAccount,
        email: &str,
        return_url: &str,
        refresh_url: &str,
    ) -> Result<Onboarding, ConnectError> {
        let account_id = match &producer.stripe_account_id {
            Some(id) => id.clone(),
            None => {
                let created = self
                    .payments
                    .create_express_account(producer.id, Some(email))
                    .await?;
                // If another request stored an account first, use that one.
                accounts::set_stripe_account(&self.pool, producer.id, &created).await?
            }
        };
        let link = self
            .payments
            .account_link(&account_id, return_url, refresh_url)
            .await?;
        Ok(Onboarding { account_id, link })
    }

    /// The onboarding state of the producer's account as Stripe reports it (recorded on the
    /// producer when it changed); `None` before the producer has an account.
    pub async fn connect_status(
        &self,
        producer: &ProducerAccount,
    ) -> Result<Option<(String, AccountState)>, ConnectError> {
        let Some(account_id) = producer.stripe_account_id.clone() else {
            return Ok(None);
        };
        let state = self.payments.account(&account_id).await?;
        let complete = state.charges_enabled && state.details_submitted;
        if complete != producer.stripe_onboarding_complete {
            accounts::set_onboarding_complete(&self.pool, producer.id, complete).await?;
        }
        Ok(Some((account_id, state)))
    }

    /// The balance of the producer's account; `None` before the producer has one.
    pub async fn connect_balance(
        &self,
        producer: &ProducerAccount,
    ) -> Result<Option<(String, AccountBalance)>, ConnectError> {
        let Some(account_id) = producer.stripe_account_id.clone() else {
            return Ok(None);
        };
        let balance = self.payments.balance(&account_id).await?;
        Ok(Some((account_id, balance)))
    }
}
