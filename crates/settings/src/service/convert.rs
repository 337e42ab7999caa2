//! Between stored rows, gRPC messages and notifier events.

use dialin_domain::{ids::new_event_id, time};
use dialin_proto::{
    notifier::v1::{self as notifier, EmailKind, Trigger},
    settings::v1::{self as pb, NumberType, Provider},
};
use secrecy::{ExposeSecret, SecretString};

use crate::{
    entity::{service_number, tenant_settings, user},
    error::{Error, Result},
    pin,
};

pub const DEFAULT_LOCALE: &str = "en-US";

/// The settings of a tenant that never changed them (version 0).
pub fn default_settings(tenant_id: &str) -> tenant_settings::Model {
    tenant_settings::Model {
        tenant_id: tenant_id.to_owned(),
        automatically_send_emails_to_users: true,
        pin_length: pin::DEFAULT_LENGTH as i32,
        send_email_from_override: false,
        send_email_from_address: String::new(),
        send_email_from_display_name: String::new(),
        default_locale: DEFAULT_LOCALE.to_owned(),
        version: 0,
    }
}

pub fn settings_to_pb(settings: tenant_settings::Model) -> pb::TenantSettings {
    pb::TenantSettings {
        tenant_id: settings.tenant_id,
        automatically_send_emails_to_users: settings.automatically_send_emails_to_users,
        pin_length: settings.pin_length.unsigned_abs(),
        send_email_from_override: settings.send_email_from_override,
        send_email_from_address: settings.send_email_from_address,
        send_email_from_display_name: settings.send_email_from_display_name,
        default_locale: settings.default_locale,
        version: settings.version.unsigned_abs(),
    }
}

/// The part of the settings the notifier needs, as a versioned policy.
pub fn policy_of(settings: &tenant_settings::Model) -> notifier::PutTenantPolicyRequest {
    notifier::PutTenantPolicyRequest {
        tenant_id: settings.tenant_id.clone(),
        automatically_send_emails_to_users: settings.automatically_send_emails_to_users,
        send_email_from_override: settings.send_email_from_override,
        send_email_from_address: settings.send_email_from_address.clone(),
        send_email_from_display_name: settings.send_email_from_display_name.clone(),
        default_locale: settings.default_locale.clone(),
        version: settings.version.unsigned_abs(),
    }
}

pub fn number_to_pb(number: service_number::Model) -> pb::ServiceNumber {
    pb::ServiceNumber {
        tenant_id: number.tenant_id,
        r#type: NumberType::from_str_name(&number.number_type)
            .unwrap_or_default()
            .into(),
        number: number.number,
        country: number.country,
    }
}

pub fn user_to_pb(user: user::Model) -> pb::ConferencingUser {
    pb::ConferencingUser {
        tenant_id: user.tenant_id,
        user_id: user.user_id,
        email: user.email,
        display_name: user.display_name,
        locale: user.locale,
        usage_location: user.usage_location,
        licensed: user.licensed,
        provider: Provider::from_str_name(&user.provider).unwrap_or_default().into(),
        provider_name: user.provider_name,
        conference_id: user.conference_id.unwrap_or_default(),
        toll_number: user.toll_number,
        toll_free_number: user.toll_free_number,
        version: user.version.unsigned_abs(),
    }
}

/// Reads an enum field that must be set: its zero value is refused.
pub fn required_enum<E>(field: &str, value: i32) -> Result<E>
where
    E: TryFrom<i32> + Default + PartialEq,
{
    match E::try_from(value) {
        Ok(parsed) if parsed != E::default() => Ok(parsed),
        _ => Err(Error::invalid(
            field.split(' ').next().unwrap_or(field),
            format!("{field} is required (got {value}); see the service's enum values"),
        )),
    }
}

/// The event that asks the notifier for one email about `user`.
pub struct EmailEvent<'a> {
    pub settings: &'a tenant_settings::Model,
    pub user: &'a user::Model,
    pub kind: EmailKind,
    pub trigger: Trigger,
    pub pin: Option<&'a SecretString>,
    pub to_address: Option<String>,
    /// Interactive for a single-user call, bulk for a call about many users.
    pub priority: notifier::Priority,
}

impl EmailEvent<'_> {
    pub fn into_request(self) -> notifier::NotifyRequest {
        notifier::NotifyRequest {
            event_id: new_event_id(),
            tenant_id: self.user.tenant_id.clone(),
            policy_version: self.settings.version.unsigned_abs(),
            kind: self.kind.into(),
            trigger: self.trigger.into(),
            recipient: Some(notifier::Recipient {
                user_id: self.user.user_id.clone(),
                email: self.to_address.unwrap_or_else(|| self.user.email.clone()),
                display_name: self.user.display_name.clone(),
                locale: self.user.locale.clone(),
            }),
            conference: Some(notifier::Conference {
                conference_id: self.user.conference_id.clone().unwrap_or_default(),
                toll_number: self.user.toll_number.clone(),
                toll_free_number: self.user.toll_free_number.clone(),
                pin: self.pin.map(|pin| pin.expose_secret().to_owned()).unwrap_or_default(),
            }),
            occurred_at: Some(time::to_timestamp(time::now_millis())),
            priority: self.priority.into(),
        }
    }
}
