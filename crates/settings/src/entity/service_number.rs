//! A phone number of a tenant's bridge. `id` orders them: "first" means earliest added.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "service_numbers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: String,
    pub number: String,
    /// `TOLL` or `TOLL_FREE`.
    pub number_type: String,
    /// ISO 3166-1 alpha-2, or empty.
    pub country: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
