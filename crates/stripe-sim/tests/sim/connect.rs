//! Connect: accounts, onboarding links, destination charges and per-account balances.

use crate::common::*;
use stripe::{AccountId, StripeError, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionPaymentIntentDataTransferData,
};
use stripe_connect::account::{CreateAccount, CreateAccountType, RetrieveAccount};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_core::balance::RetrieveForMyAccountBalance;
use stripe_core::refund::CreateRefund;
use stripe_webhook::{EventObject, Webhook};

#[tokio::test]
async fn onboarding_link_enables_charges_and_emits_account_updated() {
    let receiver = Receiver::start(0).await;
    let url = receiver.url.clone();
    let sim = sim_with(|c| c.webhook_url = Some(url)).await;
    let client = client(&sim);

    let account = CreateAccount::new()
        .type_(CreateAccountType::Express)
        .email("producer@example.com")
        .send(&client)
        .await
        .expect("create account");
    assert!(account.id.as_str().starts_with("acct_"));
    assert_eq!(account.charges_enabled, Some(false));
    assert_eq!(account.details_submitted, Some(false));
    assert_eq!(account.email.as_deref(), Some("producer@example.com"));

    let link = CreateAccountLink::new(
        account.id.as_str(),
        CreateAccountLinkType::AccountOnboarding,
    )
    .refresh_url("http://shop.test/connect/refresh")
    .return_url("http://shop.test/connect/return")
    .send(&client)
    .await
    .expect("create link");
    assert_eq!(
        link.url,
        format!("{}/connect/onboard/{}", sim.base_url(), account.id)
    );
    assert!(link.expires_at > link.created);

    let resp = http().get(&link.url).send().await.expect("visit link");
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "http://shop.test/connect/return"
    );

    let fetched = RetrieveAccount::new(account.id.as_str())
        .send(&client)
        .await
        .expect("retrieve");
    assert_eq!(fetched.charges_enabled, Some(true));
    assert_eq!(fetched.details_submitted, Some(true));
    assert_eq!(fetched.payouts_enabled, Some(true));

    let hook = &receiver.wait_ok(1).await[0];
    let event = Webhook::construct_event(&hook.body, &hook.signature, SECRET).expect("valid");
    assert_eq!(event.account.as_deref(), Some(account.id.as_str()));
    match event.data.object {
        EventObject::AccountUpdated(a) => assert_eq!(a.charges_enabled, Some(true)),
        other => panic!("unexpected {other:?}"),
    }

    match RetrieveAccount::new("acct_missing").send(&client).await {
        Err(StripeError::Stripe(_, 404)) => {}
        other => panic!("expected 404, got {other:?}"),
    }
    match CreateAccountLink::new("acct_missing", CreateAccountLinkType::AccountOnboarding)
        .send(&client)
        .await
    {
        Err(StripeError::Stripe(e, 400)) => assert_eq!(e.param.as_deref(), Some("account")),
        other => panic!("expected 400, got {other:?}"),
    }
}

#[tokio::test]
async fn destination_charge_credits_the_connected_balance() {
    let sim = sim().await;
    let client = client(&sim);
    let account = CreateAccount::new()
        .type_(CreateAccountType::Express)
        .send(&client)
        .await
        .expect("account");
    let acct = AccountId::from(account.id.as_str());

    let mut pid = CreateCheckoutSessionPaymentIntentData::new();
    pid.application_fee_amount = Some(500);
    pid.transfer_data = Some(CreateCheckoutSessionPaymentIntentDataTransferData::new(
        account.id.as_str(),
    ));
    let session = two_line_session()
        .payment_intent_data(pid)
        .send(&client)
        .await
        .expect("create");
    assert_eq!(session.amount_total, Some(6000));

    let before = RetrieveForMyAccountBalance::new()
        .customize()
        .account_id(acct.clone())
        .send(&client)
        .await
        .expect("balance");
    assert_eq!(before.available[0].amount, 0);

    let completed = complete_via_sim(&sim, session.id.as_str()).await;
    let connected = RetrieveForMyAccountBalance::new()
        .customize()
        .account_id(acct.clone())
        .send(&client)
        .await
        .expect("connected balance");
    assert_eq!(connected.available[0].amount, 5500);
    assert_eq!(connected.available[0].currency, stripe_types::Currency::USD);
    let platform = RetrieveForMyAccountBalance::new()
        .send(&client)
        .await
        .expect("platform balance");
    assert_eq!(platform.available[0].amount, 500);

    // Refund with reverse_transfer: the connected account gives back its share.
    let pi = completed["payment_intent"].as_str().expect("pi");
    CreateRefund::new()
        .payment_intent(pi)
        .amount(6000)
        .reverse_transfer(true)
        .send(&client)
        .await
        .expect("refund");
    let connected = RetrieveForMyAccountBalance::new()
        .customize()
        .account_id(acct)
        .send(&client)
        .await
        .expect("connected balance");
    assert_eq!(connected.available[0].amount, 0);

    match RetrieveForMyAccountBalance::new()
        .customize()
        .account_id(AccountId::from("acct_unknown"))
        .send(&client)
        .await
    {
        Err(StripeError::Stripe(e, 403)) => {
            assert_eq!(e.code, Some(stripe::ApiErrorsCode::AccountInvalid))
        }
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn transfer_data_amount_sets_the_connected_share() {
    let sim = sim().await;
    let client = client(&sim);
    let account = CreateAccount::new().send(&client).await.expect("account");
    let mut transfer = CreateCheckoutSessionPaymentIntentDataTransferData::new(account.id.as_str());
    transfer.amount = Some(4000);
    let mut pid = CreateCheckoutSessionPaymentIntentData::new();
    pid.transfer_data = Some(transfer.clone());
    let session = two_line_session()
        .payment_intent_data(pid.clone())
        .send(&client)
        .await
        .expect("create");
    complete_via_sim(&sim, session.id.as_str()).await;
    let bal = RetrieveForMyAccountBalance::new()
        .customize()
        .account_id(AccountId::from(account.id.as_str()))
        .send(&client)
        .await
        .expect("balance");
    assert_eq!(bal.available[0].amount, 4000);
    let platform = RetrieveForMyAccountBalance::new()
        .send(&client)
        .await
        .expect("platform");
    assert_eq!(platform.available[0].amount, 2000);

    pid.application_fee_amount = Some(1);
    match two_line_session()
        .payment_intent_data(pid)
        .send(&client)
        .await
    {
        Err(StripeError::Stripe(e, 400)) => {
            assert_eq!(
                e.param.as_deref(),
                Some("payment_intent_data[transfer_data][amount]")
            )
        }
        other => panic!("expected 400, got {other:?}"),
    }
}

#[tokio::test]
async fn direct_charge_on_connected_account_is_scoped_to_it() {
    let sim = sim().await;
    let client = client(&sim);
    let account = CreateAccount::new().send(&client).await.expect("account");
    let acct = AccountId::from(account.id.as_str());

    let mut pid = CreateCheckoutSessionPaymentIntentData::new();
    pid.application_fee_amount = Some(100);
    let session = two_line_session()
        .payment_intent_data(pid)
        .customize()
        .account_id(acct.clone())
        .send(&client)
        .await
        .expect("create on connected account");
    // The platform cannot see the connected account's session without Stripe-Account.
    let hidden =
        stripe_checkout::checkout_session::RetrieveCheckoutSession::new(session.id.clone())
            .send(&client)
            .await;
    assert!(
        matches!(hidden, Err(StripeError::Stripe(_, 404))),
        "{hidden:?}"
    );

    complete_via_sim(&sim, session.id.as_str()).await;
    let bal = RetrieveForMyAccountBalance::new()
        .customize()
        .account_id(acct)
        .send(&client)
        .await
        .expect("balance");
    assert_eq!(bal.available[0].amount, 5900);
}
