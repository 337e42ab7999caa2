//! `dialinctl numbers add | list | replace`: the bridge's service numbers, and
//! moving every user off one default number (asked for first: it changes many
//! users and emails each of them).

use dialin_proto::settings::v1::{
    AddServiceNumberRequest, ListServiceNumbersRequest, NumberType, ReplaceDefaultNumberRequest,
};

use super::Session;
use crate::{cli::NumbersCommand, confirm::confirm, failure::Failure, output::column};

pub async fn run(command: NumbersCommand, session: &Session) -> Result<(), Failure> {
    let tenant_id = session.tenant.clone();
    let mut client = session.client();
    match command {
        NumbersCommand::Add {
            number,
            number_type,
            country,
        } => {
            let added = client
                .add_service_number(AddServiceNumberRequest {
                    tenant_id,
                    number,
                    r#type: NumberType::from(number_type).into(),
                    country,
                })
                .await?;
            session.out.message(&added.into_inner())
        }
        NumbersCommand::List => {
            let numbers = client
                .list_service_numbers(ListServiceNumbersRequest { tenant_id })
                .await?
                .into_inner()
                .numbers;
            session.out.list(
                "numbers",
                &numbers,
                &[
                    column("NUMBER", "number"),
                    column("TYPE", "type"),
                    column("COUNTRY", "country"),
                ],
            )
        }
        NumbersCommand::Replace {
            from,
            to,
            number_type,
            yes,
        } => {
            let number_type = NumberType::from(number_type);
            confirm(
                &format!(
                    "Give every user of tenant {tenant_id} whose default {} number is {from} the number {to} \
                     (each is emailed SETTINGS_CHANGED)?",
                    number_type.as_str_name()
                ),
                yes,
            )?;
            let replaced = client
                .replace_default_number(ReplaceDefaultNumberRequest {
                    tenant_id,
                    from_number: from,
                    to_number: to,
                    number_type: number_type.into(),
                })
                .await?
                .into_inner();
            session.out.message_or_text(&replaced, |replaced| {
                format!("{} users updated\n", replaced.users_updated)
            })
        }
    }
}
