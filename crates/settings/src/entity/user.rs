//! A user's conferencing state. The PIN is kept only as a keyed hash.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub locale: String,
    pub usage_location: String,
    pub licensed: bool,
    /// `HOSTED`, `THIRD_PARTY` or `NONE`.
    pub provider: String,
    pub provider_name: String,
    /// Seven digits while on the hosted bridge; unique within the tenant.
    pub conference_id: Option<String>,
    pub toll_number: String,
    pub toll_free_number: String,
    /// HMAC-SHA256 of the PIN under the service's PIN key, hex.
    pub pin_hash: Option<String>,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
