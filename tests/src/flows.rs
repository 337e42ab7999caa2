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
                ..Default::default()
            })
            .await
            .expect("ListDeliveries")
            .into_inner()
            .deliveries
    }

    /// Every delivery of the tenant, newest first (all pages).
    pub async fn tenant_deliveries(&mut self, tenant_id: &str) -> Vec<notifier::Delivery> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .notifier
                .list_deliveries(notifier::ListDeliveriesRequest {
                    tenant_id: tenant_id.into(),
                    user_id: None,
                    page_size: 1000,
                    page_token,
                    ..Default::default()
                })
                .await
                .expect("ListDeliveries")
                .into_inner();
            all.extend(page.deliveries);
            if page.next_page_token.is_empty() {
                return all;
            }
            page_token = page.next_page_token;
        }
    }

    /// Waits until the tenant has at least `count` deliveries, none pending.
    pub async fn settled_tenant(
        &mut self,
        tenant_id: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<notifier::Delivery> {
        wait_until(&format!("{count} settled deliveries in {tenant_id}"), timeout, || {
            let mut clients = self.clone();
            async move {
                let deliveries = clients.tenant_deliveries(tenant_id).await;
                let settled = deliveries.iter().all(|d| d.status() != DeliveryStatus::Pending);
                (deliveries.len() >= count && settled).then_some(deliveries)
            }
        })
        .await
    }

    /// Licenses every user in `user_ids`, `concurrency` calls at a time; returns
    /// each call's outcome (the PIN, or the status code) in the order given.
    pub async fn license_all(
        &self,
        tenant_id: &str,
        user_ids: &[String],
        concurrency: usize,
    ) -> Vec<(String, Result<String, tonic::Code>)> {
        let queue = std::sync::Arc::new(tokio::sync::Mutex::new(
            user_ids.iter().cloned().enumerate().collect::<Vec<_>>(),
        ));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let queue = std::sync::Arc::clone(&queue);
            let mut clients = self.clone();
            let tenant_id = tenant_id.to_owned();
            workers.spawn(async move {
                let mut outcomes = Vec::new();
                while let Some((index, user_id)) = queue.lock().await.pop() {
                    let outcome = clients
                        .settings
                        .assign_license(settings::AssignLicenseRequest {
                            tenant_id: tenant_id.clone(),
                            user_id: user_id.clone(),
                            email: format!("{user_id}@example.com"),
                            display_name: format!("User {user_id}"),
                            ..Default::default()
                        })
                        .await
                        .map(|response| response.into_inner().pin)
                        .map_err(|status| status.code());
                    outcomes.push((index, user_id, outcome));
                }
                outcomes
            });
        }
        let mut outcomes: Vec<_> = workers.join_all().await.into_iter().flatten().collect();
        outcomes.sort_by_key(|(index, _, _)| *index);
        outcomes
            .into_iter()
            .map(|(_, user_id, outcome)| (user_id, outcome))
            .collect()
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
