//! The bridge's service numbers, and which of them a user gets by default.

use dialin_domain::validate;
use dialin_proto::settings::v1::{self as pb, NumberType};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::{
    SettingsApi,
    convert::{number_to_pb, required_enum},
};
use crate::{
    entity::service_number,
    error::{Error, Reason, Result, check},
};

pub(super) async fn add_number(api: &SettingsApi, request: pb::AddServiceNumberRequest) -> Result<pb::ServiceNumber> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    check(validate::e164("number", &request.number))?;
    let number_type: NumberType = required_enum("type (TOLL or TOLL_FREE)", request.r#type)?;
    let country = request.country.unwrap_or_default();
    if !country.is_empty() {
        check(validate::country("country", &country))?;
    }

    let (number, added) = api
        .db
        .write(async |txn| {
            let existing = service_number::Entity::find()
                .filter(service_number::Column::TenantId.eq(&request.tenant_id))
                .filter(service_number::Column::Number.eq(&request.number))
                .one(txn)
                .await?;
            if let Some(existing) = existing {
                // Adding the same number again is a harmless retry; changing its type is not.
                if existing.number_type == number_type.as_str_name() && existing.country == country {
                    return Ok((existing, false));
                }
                return Err(Error::already_exists(
                    Reason::NumberTaken,
                    format!(
                        "{} is already on the bridge as {} {}; service numbers cannot be changed",
                        existing.number, existing.number_type, existing.country
                    ),
                )
                .about("tenant_id", &existing.tenant_id)
                .about("number", &existing.number));
            }
            let added = service_number::ActiveModel {
                tenant_id: Set(request.tenant_id.clone()),
                number: Set(request.number.clone()),
                number_type: Set(number_type.as_str_name().to_owned()),
                country: Set(country.clone()),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            Ok((added, true))
        })
        .await?;
    if added {
        tracing::info!(
            tenant_id = number.tenant_id,
            number = number.number,
            kind = number.number_type,
            "service number added"
        );
    }
    Ok(number_to_pb(number))
}

pub(super) async fn list_numbers(
    api: &SettingsApi,
    request: pb::ListServiceNumbersRequest,
) -> Result<pb::ListServiceNumbersResponse> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    let numbers = numbers_of(api.db.reader(), &request.tenant_id).await?;
    Ok(pb::ListServiceNumbersResponse {
        numbers: numbers.into_iter().map(number_to_pb).collect(),
    })
}

/// The tenant's service numbers, earliest added first.
pub(super) async fn numbers_of(conn: &impl ConnectionTrait, tenant_id: &str) -> Result<Vec<service_number::Model>> {
    Ok(service_number::Entity::find()
        .filter(service_number::Column::TenantId.eq(tenant_id))
        .order_by_asc(service_number::Column::Id)
        .all(conn)
        .await?)
}

/// The tenant's service numbers, for choosing and checking users' defaults.
pub(super) struct Bridge {
    numbers: Vec<service_number::Model>,
}

impl Bridge {
    pub(super) async fn load(conn: &impl ConnectionTrait, tenant_id: &str) -> Result<Self> {
        Ok(Self {
            numbers: numbers_of(conn, tenant_id).await?,
        })
    }

    fn of_type(&self, number_type: NumberType) -> impl Iterator<Item = &service_number::Model> {
        self.numbers
            .iter()
            .filter(move |n| n.number_type == number_type.as_str_name())
    }

    /// Refuses a number that is not one of the bridge's numbers of that type.
    pub(super) fn check(&self, field: &str, number: &str, number_type: NumberType) -> Result<()> {
        check(validate::e164(field, number))?;
        if self.of_type(number_type).any(|n| n.number == number) {
            return Ok(());
        }
        Err(Error::precondition(
            Reason::NumberNotOnBridge,
            format!(
                "{field} {number} is not a {} service number of this tenant's bridge; add it with AddServiceNumber or pick one from ListServiceNumbers",
                number_type.as_str_name()
            ),
        )
        .about("field", field)
        .about("number", number))
    }

    /// The toll number a user gets: `requested` if given (and on the bridge),
    /// else the first toll number in their country, else the first toll number.
    pub(super) fn toll_number_for(&self, requested: Option<&str>, usage_location: &str) -> Result<String> {
        if let Some(number) = requested {
            self.check("toll_number", number, NumberType::Toll)?;
            return Ok(number.to_owned());
        }
        let in_country = self
            .of_type(NumberType::Toll)
            .find(|n| !usage_location.is_empty() && n.country == usage_location);
        in_country
            .or_else(|| self.of_type(NumberType::Toll).next())
            .map(|n| n.number.clone())
            .ok_or_else(|| {
                Error::precondition(
                    Reason::NoTollNumber,
                    "the tenant's bridge has no toll service number, so users cannot be put on it; add one with AddServiceNumber first",
                )
            })
    }

    /// The toll-free number a user gets: `requested` if given and non-empty (and
    /// on the bridge), else none.
    pub(super) fn toll_free_number_for(&self, requested: Option<&str>) -> Result<String> {
        match requested {
            Some(number) if !number.is_empty() => {
                self.check("toll_free_number", number, NumberType::TollFree)?;
                Ok(number.to_owned())
            }
            _ => Ok(String::new()),
        }
    }
}
