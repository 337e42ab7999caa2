//! A tenant's bridge settings; a tenant with no row has the defaults.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    pub automatically_send_emails_to_users: bool,
    pub pin_length: i32,
    pub send_email_from_override: bool,
    pub send_email_from_address: String,
    pub send_email_from_display_name: String,
    pub default_locale: String,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
