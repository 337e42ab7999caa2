//! What a command prints on stdout: canonical proto JSON (what grpcurl
//! prints: lowerCamelCase names, enum names, RFC 3339 times, 64-bit integers
//! as strings, defaults included), or aligned text columns for people. JSON is
//! made from the message's descriptor (prost-reflect over the descriptor set
//! dialin-proto embeds), never by hand per type.

use std::{
    io::{IsTerminal, Write},
    sync::OnceLock,
};

use dialin_proto::{notifier::v1 as notifier, settings::v1 as settings};
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage, SerializeOptions};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::{cli::OutputMode, failure::Failure};

/// A generated message with its full proto name, to find its descriptor.
pub trait Proto: prost::Message + Sized {
    const NAME: &'static str;
}

macro_rules! proto_names {
    ($($ty:ty => $name:literal,)*) => {
        $(impl Proto for $ty {
            const NAME: &'static str = $name;
        })*
        #[cfg(test)]
        const NAMES: &[&str] = &[$($name),*];
    };
}

proto_names! {
    settings::TenantSettings => "dialin.settings.v1.TenantSettings",
    settings::ServiceNumber => "dialin.settings.v1.ServiceNumber",
    settings::ConferencingUser => "dialin.settings.v1.ConferencingUser",
    settings::AssignLicenseResponse => "dialin.settings.v1.AssignLicenseResponse",
    settings::ResetPinResponse => "dialin.settings.v1.ResetPinResponse",
    settings::SetProviderResponse => "dialin.settings.v1.SetProviderResponse",
    settings::SendConferenceInfoEmailResponse => "dialin.settings.v1.SendConferenceInfoEmailResponse",
    settings::ReplaceDefaultNumberResponse => "dialin.settings.v1.ReplaceDefaultNumberResponse",
    settings::VerifyPinResponse => "dialin.settings.v1.VerifyPinResponse",
    notifier::Delivery => "dialin.notifier.v1.Delivery",
    notifier::PreviewEmailResponse => "dialin.notifier.v1.PreviewEmailResponse",
}

const JSON_OPTIONS: SerializeOptions = SerializeOptions::new().skip_default_fields(false);

fn pool() -> Result<&'static DescriptorPool, Failure> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(dialin_proto::FILE_DESCRIPTOR_SET).map_err(|error| error.to_string()))
        .as_ref()
        .map_err(|error| Failure::Local(format!("the embedded proto descriptors: {error}")))
}

/// A message as its descriptor sees it: serializes as canonical proto JSON.
pub struct Json(DynamicMessage);

impl Json {
    pub fn of<M: Proto>(message: &M) -> Result<Self, Failure> {
        let descriptor = pool()?
            .get_message_by_name(M::NAME)
            .ok_or_else(|| Failure::Local(format!("no descriptor for {}", M::NAME)))?;
        DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
            .map(Self)
            .map_err(|error| Failure::Local(format!("{}: {error}", M::NAME)))
    }

    pub fn all<M: Proto>(messages: &[M]) -> Result<Vec<Self>, Failure> {
        messages.iter().map(Self::of).collect()
    }

    /// The JSON object.
    pub fn value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Each field that is present, by its proto name, in the order the proto declares them.
    pub fn fields(&self) -> Vec<(String, Value)> {
        let value = self.value();
        self.0
            .descriptor()
            .fields()
            .filter_map(|field| {
                value
                    .get(field.json_name())
                    .map(|value| (field.name().to_owned(), value.clone()))
            })
            .collect()
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_with_options(serializer, &JSON_OPTIONS)
    }
}

/// A column of a table: its heading and the JSON field it shows.
pub struct Column {
    pub heading: &'static str,
    pub field: &'static str,
}

pub const fn column(heading: &'static str, field: &'static str) -> Column {
    Column { heading, field }
}

/// Prints in the mode asked for: json when piped, a table on a terminal.
pub struct Printer {
    json: bool,
}

impl Printer {
    pub fn new(mode: Option<OutputMode>) -> Self {
        let mode = mode.unwrap_or(if std::io::stdout().is_terminal() {
            OutputMode::Table
        } else {
            OutputMode::Json
        });
        Self {
            json: mode == OutputMode::Json,
        }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// One message: its JSON, or a field per line.
    pub fn message<M: Proto>(&self, message: &M) -> Result<(), Failure> {
        let json = Json::of(message)?;
        if self.json {
            print_json(&json)
        } else {
            print_text(&render_fields(&json.fields()))
        }
    }

    /// A message's JSON, or `text` for people.
    pub fn message_or_text<M: Proto>(&self, message: &M, text: impl FnOnce(&M) -> String) -> Result<(), Failure> {
        if self.json {
            print_json(&Json::of(message)?)
        } else {
            print_text(&text(message))
        }
    }

    /// A list: `{"<key>": [...]}`, or a table of `columns`.
    pub fn list<M: Proto>(&self, key: &str, messages: &[M], columns: &[Column]) -> Result<(), Failure> {
        let items = Json::all(messages)?;
        if self.json {
            print_json(&std::collections::BTreeMap::from([(key, items)]))
        } else {
            print_text(&render_table(
                columns,
                &items.iter().map(Json::value).collect::<Vec<_>>(),
            ))
        }
    }

    /// A response that carries a new PIN: its JSON, or the user and the PIN,
    /// said to be shown once.
    pub fn with_pin<M: Proto>(
        &self,
        response: &M,
        user: Option<&settings::ConferencingUser>,
        pin: &str,
    ) -> Result<(), Failure> {
        if self.json {
            return print_json(&Json::of(response)?);
        }
        let mut text = match user {
            Some(user) => render_fields(&Json::of(user)?.fields()),
            None => String::new(),
        };
        if !pin.is_empty() {
            text.push_str(&format!(
                "\nPIN: {pin}\n(shown once: pass it on now; it cannot be read again)\n"
            ));
        }
        print_text(&text)
    }
}

/// Pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|error| Failure::Local(format!("JSON: {error}")))?;
    print_text(&format!("{text}\n"))
}

/// `text` on stdout; a reader that went away (`| head`) is not an error.
pub fn print_text(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Local(format!("cannot write to stdout: {error}")))
        }
        _ => Ok(()),
    }
}

/// A JSON value as a table cell: strings bare, nothing for null.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// `name  value` lines, the values aligned.
pub fn render_fields(fields: &[(String, Value)]) -> String {
    let rows: Vec<Vec<String>> = fields
        .iter()
        .map(|(name, value)| vec![name.clone(), cell(Some(value))])
        .collect();
    render_rows(&rows)
}

/// A heading row and a row per item, in aligned columns.
pub fn render_table(columns: &[Column], items: &[Value]) -> String {
    let mut rows = vec![
        columns
            .iter()
            .map(|column| column.heading.to_owned())
            .collect::<Vec<_>>(),
    ];
    rows.extend(items.iter().map(|item| {
        columns
            .iter()
            .map(|column| cell(item.get(column.field)))
            .collect::<Vec<_>>()
    }));
    render_rows(&rows)
}

/// Rows in columns two spaces apart, each as wide as its widest cell; no
/// trailing spaces. A cell's line breaks become spaces, so a row stays a line.
pub fn render_rows(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| cell.replace(['\r', '\n'], " ")).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (index, cell) in row.iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(index) {
                Some(max) => *max = (*max).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut text = String::new();
    for row in &rows {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths[index] - cell.chars().count();
            line.extend(std::iter::repeat_n(' ', pad));
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use dialin_proto::settings::v1::Provider;

    use super::*;

    #[test]
    fn every_named_message_has_a_descriptor() {
        for name in NAMES {
            assert!(pool().unwrap().get_message_by_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn json_is_canonical_proto_json() {
        let user = settings::ConferencingUser {
            tenant_id: "t".into(),
            user_id: "alice".into(),
            licensed: false,
            provider: Provider::ThirdParty.into(),
            version: 3,
            ..Default::default()
        };
        let value = Json::of(&user).unwrap().value();
        assert_eq!(value["userId"], "alice");
        assert_eq!(value["provider"], "THIRD_PARTY");
        assert_eq!(value["licensed"], false, "defaults are shown");
        assert_eq!(value["version"], "3", "64-bit integers are strings");
        assert_eq!(value["tollFreeNumber"], "");

        let delivery = notifier::Delivery {
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        let value = Json::of(&delivery).unwrap().value();
        assert_eq!(value["createdAt"], "2023-11-14T22:13:20Z");
        assert!(value.get("sentAt").is_none(), "an absent message is left out");
        assert_eq!(value["status"], "DELIVERY_STATUS_UNSPECIFIED");
    }

    #[test]
    fn fields_keep_the_proto_order_and_names() {
        let settings = settings::TenantSettings {
            tenant_id: "t".into(),
            automatically_send_emails_to_users: true,
            pin_length: 5,
            version: 2,
            ..Default::default()
        };
        let fields = Json::of(&settings).unwrap().fields();
        let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tenant_id",
                "automatically_send_emails_to_users",
                "pin_length",
                "send_email_from_override",
                "send_email_from_address",
                "send_email_from_display_name",
                "default_locale",
                "version"
            ]
        );
        assert_eq!(
            render_fields(&fields[..3]),
            "tenant_id                           t\n\
             automatically_send_emails_to_users  true\n\
             pin_length                          5\n"
        );
    }

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let items = vec![
            serde_json::json!({"userId": "al", "email": "al@example.com", "licensed": true}),
            serde_json::json!({"userId": "bernadette", "email": "", "licensed": false}),
        ];
        let columns = [
            column("USER_ID", "userId"),
            column("EMAIL", "email"),
            column("LICENSED", "licensed"),
        ];
        assert_eq!(
            render_table(&columns, &items),
            "USER_ID     EMAIL           LICENSED\n\
             al          al@example.com  true\n\
             bernadette                  false\n"
        );
        assert_eq!(render_rows(&[vec!["a\nb".into(), "c".into()]]), "a b  c\n");
        assert_eq!(
            render_rows(&[vec!["é".into(), "x".into()], vec!["ab".into()]]),
            "é   x\nab\n"
        );
    }
}
