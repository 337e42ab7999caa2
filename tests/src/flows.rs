//! Short-hands for the calls every test makes, and waits on their outcome.

use std::time::Duration;

use dialin_proto::{
    notifier::v1::{self as notifier, DeliveryStatus},
    settings::v1::{self as settings, NumberType},
};

use crate::{Clients, ReceivedEmail, SmtpServer, wait_until};

/// Long enough for a loaded 2-core CI machine; a passing test takes far less.
pub const DEADLINE: Duration = Duration::from_secs(20);

impl Clients {
    pub async fn add_number(&mut self, tenant_id: &str, number: &str, number_type: NumberType, country: &str) {
        self.settings
            .add_service_number(settings::AddServiceNumberRequest {
                tenant_id: tenant_id.into(),
                number: number.into(),
                r#type: number_type.into(),
                country: (!country.is_empty()).then(|| country.into()),
            })
            .await
            .expect("AddServiceNumber");
    }

    /// Licenses `user_id` (email `<user_id>@example.com`); returns the user and PIN.
    pub async fn license(&mut self, tenant_id: &str, user_id: &str) -> (settings::ConferencingUser, String) {
        let response = self
            .settings
            .assign_license(settings::AssignLicenseRequest {
                tenant_id: tenant_id.into(),
                user_id: user_id.into(),
                email: format!("{user_id}@example.com"),
                display_name: format!("User {user_id}"),
                ..Default::default()
            })
            .await
            .expect("AssignLicense")
            .into_inner();
        (response.user.expect("a user"), response.pin)
    }

    /// 12-digit PINs: long enough that "the PIN is not in this email" cannot
    /// be fooled by a conference ID or phone number that happens to contain it.
    pub async fn long_pins(&mut self, tenant_id: &str) {
        self.settings
            .update_tenant_settings(settings::UpdateTenantSettingsRequest {
                tenant_id: tenant_id.into(),
                pin_length: Some(12),
                ..Default::default()
            })
            .await
            .expect("UpdateTenantSettings");
    }

    pub async fn set_switch(&mut self, tenant_id: &str, on: bool) -> settings::TenantSettings {
        self.settings
            .update_tenant_settings(settings::UpdateTenantSettingsRequest {
                tenant_id: tenant_id.into(),
                automatically_send_emails_to_users: Some(on),
                ..Default::default()
            })
            .await
            .expect("UpdateTenantSettings")
            .into_inner()
    }

    /// The user's deliveries, newest first.
    pub async fn deliveries(&mut self, tenant_id: &str, user_id: &str) -> Vec<notifier::Delivery> {
        self.notifier
            .list_deliveries(notifier::ListDeliveriesRequest {
                tenant_id: tenant_id.into(),
                user_id: Some(user_id.into()),
                page_size: 1000,
                page_token: String::new(),
            })
            .await
            .expect("ListDeliveries")
            .into_inner()
            .deliveries
    }

    /// Waits until the user has exactly `count` deliveries and none is pending;
    /// returns them oldest first.
    pub async fn settled_deliveries(
        &mut self,
        tenant_id: &str,
        user_id: &str,
        count: usize,
    ) -> Vec<notifier::Delivery> {
        let what = format!("{count} settled deliveries for {user_id}");
        let mut deliveries = wait_until(&what, DEADLINE, || {
            let mut clients = self.clone();
            async move {
                let deliveries = clients.deliveries(tenant_id, user_id).await;
                let settled = deliveries.iter().all(|d| d.status() != DeliveryStatus::Pending);
                (deliveries.len() >= count && settled).then_some(deliveries)
            }
        })
        .await;
        assert_eq!(deliveries.len(), count, "deliveries for {user_id}: {deliveries:#?}");
        deliveries.reverse();
        deliveries
    }
}

impl SmtpServer {
    /// Waits for the one email of `delivery_id` and returns it.
    pub async fn wait_for(&self, delivery_id: &str) -> ReceivedEmail {
        wait_until(&format!("the email of delivery {delivery_id}"), DEADLINE, || async {
            self.received_for(delivery_id).into_iter().next()
        })
        .await
    }
}
