//! Every version of a tenant's email policy that reached the notifier, so the
//! gate can ask what the switch was when a change happened, not only now.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_policies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i64,
    pub automatically_send_emails_to_users: bool,
    pub send_email_from_override: bool,
    pub send_email_from_address: String,
    pub send_email_from_display_name: String,
    pub default_locale: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
