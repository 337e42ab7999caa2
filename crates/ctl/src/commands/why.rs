//! `dialinctl why USER`: "why did Alice get no email?" in one command: the
//! tenant's switch, the user, and the user's emails newest first with what
//! became of each and why. JSON: `{tenant, user, deliveries}`.

use dialin_proto::{
    notifier::v1::{Delivery, DeliveryStatus},
    settings::v1::{ConferencingUser, GetTenantSettingsRequest, Provider, TenantSettings},
};
use serde::Serialize;

use super::{
    Session,
    deliveries::{DELIVERY_COLUMNS, list},
};
use crate::{
    failure::Failure,
    output::{Json, print_json, print_text, render_table},
    user_ref::UserRef,
};

/// How many of the user's latest emails are shown.
const LATEST: usize = 20;

#[derive(Serialize)]
struct Why {
    tenant: Json,
    user: Json,
    deliveries: Vec<Json>,
}

pub async fn run(user: &str, session: &Session) -> Result<(), Failure> {
    let user = session.user(user).await?;
    let tenant = session
        .client()
        .get_tenant_settings(GetTenantSettingsRequest {
            tenant_id: session.tenant.clone(),
        })
        .await?
        .into_inner();
    let deliveries = list(
        session,
        Some(UserRef::Id(&user.user_id)),
        DeliveryStatus::Unspecified,
        LATEST,
    )
    .await?;
    if session.out.is_json() {
        return print_json(&Why {
            tenant: Json::of(&tenant)?,
            user: Json::of(&user)?,
            deliveries: Json::all(&deliveries)?,
        });
    }
    let mut text = explain(&tenant, &user, &deliveries).join("\n");
    text.push('\n');
    if !deliveries.is_empty() {
        let rows: Vec<serde_json::Value> = Json::all(&deliveries)?.iter().map(Json::value).collect();
        text.push_str("\nEmails, newest first:\n");
        text.push_str(&render_table(&DELIVERY_COLUMNS, &rows));
    }
    print_text(&text)
}

/// The answer in a few lines: the switch, the user, the latest email.
pub fn explain(tenant: &TenantSettings, user: &ConferencingUser, deliveries: &[Delivery]) -> Vec<String> {
    let switch = if tenant.automatically_send_emails_to_users {
        format!(
            "Automatic emails: ON as of settings version {} — changes to a user's PIN, conference ID or numbers email them",
            tenant.version
        )
    } else {
        format!(
            "Automatic emails: OFF as of settings version {} — automatic emails are suppressed; \
             an admin can still send-info (`dialinctl user send-info {}`)",
            tenant.version, user.user_id
        )
    };
    let state = match (user.licensed, user.provider()) {
        (false, _) => "not licensed: no conferencing emails but DISABLED".to_owned(),
        (true, Provider::Hosted) => format!("licensed, on the hosted bridge, conference ID {}", user.conference_id),
        (true, provider) => format!(
            "licensed, provider {} {}: the hosted bridge sends them no conferencing emails",
            provider.as_str_name(),
            user.provider_name
        ),
    };
    let latest = match deliveries.first() {
        None => "No emails recorded for this user.".to_owned(),
        Some(latest) => format!("Latest email: {}", fate(latest)),
    };
    vec![
        switch,
        format!("User {} <{}>: {state}", user.user_id, user.email),
        latest,
    ]
}

/// What became of one email, and why.
fn fate(delivery: &Delivery) -> String {
    let what = format!(
        "{} ({}), {}",
        delivery.kind().as_str_name(),
        delivery.trigger().as_str_name(),
        delivery.status().as_str_name()
    );
    let when = |time: Option<&prost_types::Timestamp>| time.map(ToString::to_string).unwrap_or_default();
    match delivery.status() {
        DeliveryStatus::Sent => format!(
            "{what} to {} at {}",
            delivery.to_address,
            when(delivery.sent_at.as_ref())
        ),
        DeliveryStatus::Failed => format!(
            "{what} after {} attempts: {}; `dialinctl deliveries retry {}` sends it again",
            delivery.attempts, delivery.reason, delivery.delivery_id
        ),
        DeliveryStatus::Pending => format!("{what}, waiting to be sent ({} attempts so far)", delivery.attempts),
        DeliveryStatus::Suppressed | DeliveryStatus::Superseded | DeliveryStatus::Unspecified => {
            format!("{what}: {}", delivery.reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use dialin_proto::notifier::v1::{EmailKind, Trigger};

    use super::*;

    fn alice() -> ConferencingUser {
        ConferencingUser {
            user_id: "alice".into(),
            email: "alice@contoso.com".into(),
            licensed: true,
            provider: Provider::Hosted.into(),
            conference_id: "1234567".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_suppressed_email_is_explained_by_the_switch() {
        let tenant = TenantSettings {
            automatically_send_emails_to_users: false,
            version: 3,
            ..Default::default()
        };
        let suppressed = Delivery {
            kind: EmailKind::PinReset.into(),
            trigger: Trigger::Automatic.into(),
            status: DeliveryStatus::Suppressed.into(),
            reason: "automatic emails are off for this tenant".into(),
            ..Default::default()
        };
        let lines = explain(&tenant, &alice(), &[suppressed]);
        assert_eq!(
            lines[0],
            "Automatic emails: OFF as of settings version 3 — automatic emails are suppressed; \
             an admin can still send-info (`dialinctl user send-info alice`)"
        );
        assert_eq!(
            lines[1],
            "User alice <alice@contoso.com>: licensed, on the hosted bridge, conference ID 1234567"
        );
        assert_eq!(
            lines[2],
            "Latest email: PIN_RESET (AUTOMATIC), SUPPRESSED: automatic emails are off for this tenant"
        );
    }

    #[test]
    fn each_fate_says_what_to_do() {
        let failed = Delivery {
            delivery_id: "d1".into(),
            kind: EmailKind::Welcome.into(),
            trigger: Trigger::Automatic.into(),
            status: DeliveryStatus::Failed.into(),
            attempts: 3,
            reason: "550 mailbox unavailable".into(),
            ..Default::default()
        };
        assert_eq!(
            fate(&failed),
            "WELCOME (AUTOMATIC), FAILED after 3 attempts: 550 mailbox unavailable; \
             `dialinctl deliveries retry d1` sends it again"
        );
        let sent = Delivery {
            kind: EmailKind::ConferenceInfo.into(),
            trigger: Trigger::Manual.into(),
            status: DeliveryStatus::Sent.into(),
            to_address: "alice@contoso.com".into(),
            sent_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(
            fate(&sent),
            "CONFERENCE_INFO (MANUAL), SENT to alice@contoso.com at 2023-11-14T22:13:20Z"
        );
        let tenant = TenantSettings {
            automatically_send_emails_to_users: true,
            ..Default::default()
        };
        let unlicensed = ConferencingUser {
            licensed: false,
            ..alice()
        };
        let lines = explain(&tenant, &unlicensed, &[]);
        assert!(lines[0].starts_with("Automatic emails: ON"));
        assert!(lines[1].ends_with("not licensed: no conferencing emails but DISABLED"));
        assert_eq!(lines[2], "No emails recorded for this user.");
    }
}
