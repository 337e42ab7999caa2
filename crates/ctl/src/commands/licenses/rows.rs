//! Reading an import file: CSV with the header
//! `user_id,email,display_name[,locale,usage_location,toll_number]` (columns in
//! any order, the last three optional). Each line becomes a user to license or
//! a bad row that says what is wrong with it; only a header that cannot be
//! read refuses the whole file. The checks here are the ones a file gets
//! wrong (a field missing, no address, a user twice); the service checks the rest.

use std::{collections::HashMap, io::Read};

use dialin_proto::settings::v1::UserToLicense;

pub const COLUMNS: [&str; 6] = [
    "user_id",
    "email",
    "display_name",
    "locale",
    "usage_location",
    "toll_number",
];
/// The first three columns must be there.
const REQUIRED: usize = 3;

/// A user to license, from line `line` of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub user: UserToLicense,
}

/// A line that cannot be sent, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: u64,
    pub user_id: String,
    pub email: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Row(Row),
    Bad(BadRow),
}

/// Every line of the file after the header, in order.
pub fn parse(input: impl Read) -> Result<Vec<Item>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(Ok(header)) => header,
        Some(Err(error)) => return Err(format!("cannot read the header: {error}")),
        None => return Err("the file is empty; it needs a header line".into()),
    };
    let positions = columns(&header)?;
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut items = Vec::new();
    let mut last_line = 1;
    for record in records {
        let item = match record {
            Ok(record) => {
                last_line = record.position().map_or(last_line + 1, csv::Position::line);
                row(&record, &positions, last_line, &mut first_line)
            }
            Err(error) => {
                last_line = error.position().map_or(last_line + 1, csv::Position::line);
                Item::Bad(BadRow {
                    line: last_line,
                    user_id: String::new(),
                    email: String::new(),
                    message: format!("malformed CSV: {error}"),
                })
            }
        };
        items.push(item);
    }
    Ok(items)
}

/// Where each of [`COLUMNS`] is in the file (`None`: absent).
fn columns(header: &csv::ByteRecord) -> Result<[Option<usize>; 6], String> {
    let expected = format!("the header must name the columns {}", COLUMNS.join(","));
    let mut positions = [None; 6];
    for (index, name) in header.iter().enumerate() {
        let name = std::str::from_utf8(name).map_err(|_| format!("the header is not UTF-8; {expected}"))?;
        let name = name.trim_start_matches('\u{feff}').trim();
        let column = COLUMNS
            .iter()
            .position(|column| column.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("unknown column {name:?} in the header; {expected}"))?;
        if positions[column].replace(index).is_some() {
            return Err(format!("column {name} appears twice in the header"));
        }
    }
    if let Some(missing) = (0..REQUIRED).find(|&column| positions[column].is_none()) {
        return Err(format!("the header has no {} column; {expected}", COLUMNS[missing]));
    }
    Ok(positions)
}

/// One line: a row to send, or what is wrong with it.
fn row(
    record: &csv::ByteRecord,
    positions: &[Option<usize>; 6],
    line: u64,
    first_line: &mut HashMap<String, u64>,
) -> Item {
    let width = positions.iter().flatten().count();
    let field = |column: usize| -> Result<String, String> {
        match positions[column].and_then(|index| record.get(index)) {
            None => Ok(String::new()),
            Some(bytes) => std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| format!("{} is not UTF-8", COLUMNS[column])),
        }
    };
    let fields: Result<Vec<String>, String> = (0..COLUMNS.len()).map(field).collect();
    let bad = |user_id: &str, email: &str, message: String| {
        Item::Bad(BadRow {
            line,
            user_id: user_id.to_owned(),
            email: email.to_owned(),
            message,
        })
    };
    let fields = match fields {
        Ok(fields) => fields,
        Err(message) => return bad("", "", message),
    };
    let [user_id, email, display_name, locale, usage_location, toll_number] =
        <[String; 6]>::try_from(fields).unwrap_or_default();
    if record.len() > width {
        return bad(
            &user_id,
            &email,
            format!("{} fields, but the header names {width} columns", record.len()),
        );
    }
    let mut problems = Vec::new();
    for (name, value) in [
        ("user_id", &user_id),
        ("email", &email),
        ("display_name", &display_name),
    ] {
        if value.is_empty() {
            problems.push(format!("{name} is empty"));
        }
    }
    if !email.is_empty() && !plausible_email(&email) {
        problems.push(format!("email {email:?} is not an address"));
    }
    if !user_id.is_empty() {
        if let Some(first) = first_line.get(&user_id) {
            problems.push(format!("user {user_id} appears more than once (first on line {first})"));
        } else {
            first_line.insert(user_id.clone(), line);
        }
    }
    if !problems.is_empty() {
        return bad(&user_id, &email, problems.join("; "));
    }
    let optional = |value: String| (!value.is_empty()).then_some(value);
    Item::Row(Row {
        line,
        user: UserToLicense {
            user_id,
            email,
            display_name,
            locale: optional(locale),
            usage_location: optional(usage_location),
            toll_number: optional(toll_number),
            toll_free_number: None,
        },
    })
}

/// One `@` between a local part and a domain, no spaces: a row that fails
/// this never reaches the service, whose own check (stricter, and the one
/// that decides) answers for the rest; never stricter than it (`a@localhost`).
fn plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(items: &[Item]) -> Vec<(u64, &str)> {
        items
            .iter()
            .filter_map(|item| match item {
                Item::Bad(bad) => Some((bad.line, bad.message.as_str())),
                Item::Row(_) => None,
            })
            .collect()
    }

    #[test]
    fn good_rows_become_users_with_their_optional_fields() {
        let items = parse(
            "user_id,email,display_name,locale,usage_location,toll_number\n\
             alice,alice@contoso.com,Alice Smith,fr-FR,FR,+33155550100\n\
             bob , bob@contoso.com ,\"Bob, Jr.\",,,\n\
             carol,carol@contoso.com,Carol\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(items.len(), 3);
        let Item::Row(alice) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(alice.line, 2);
        assert_eq!(alice.user.locale.as_deref(), Some("fr-FR"));
        assert_eq!(alice.user.toll_number.as_deref(), Some("+33155550100"));
        let Item::Row(bob) = &items[1] else { panic!("{items:?}") };
        assert_eq!(
            (
                bob.user.user_id.as_str(),
                bob.user.email.as_str(),
                bob.user.display_name.as_str()
            ),
            ("bob", "bob@contoso.com", "Bob, Jr.")
        );
        assert_eq!(bob.user.locale, None);
        let Item::Row(carol) = &items[2] else {
            panic!("{items:?}")
        };
        assert_eq!((carol.line, carol.user.usage_location.clone()), (4, None));
    }

    #[test]
    fn columns_go_in_any_order_and_the_optional_ones_may_be_left_out() {
        let items = parse("\u{feff}Email,user_id,display_name\nann@x.org,ann,Ann\n".as_bytes()).unwrap();
        let Item::Row(ann) = &items[0] else { panic!("{items:?}") };
        assert_eq!(
            (ann.user.user_id.as_str(), ann.user.email.as_str()),
            ("ann", "ann@x.org")
        );
    }

    #[test]
    fn bad_rows_say_what_is_wrong_and_do_not_stop_the_others() {
        let items = parse(
            "user_id,email,display_name,locale,usage_location,toll_number\n\
             ok1,ok1@x.org,One,,,\n\
             nomail,not-an-email,No Mail,,,\n\
             noname,noname@x.org,,,,\n\
             ok1,again@x.org,Again,,,\n\
             wide,wide@x.org,Wide,,,,extra\n\
             ,,,,,\n\
             ok2,ok2@x.org,Two,,,\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(items.len(), 7);
        assert_eq!(
            bad(&items),
            [
                (3, "email \"not-an-email\" is not an address"),
                (4, "display_name is empty"),
                (5, "user ok1 appears more than once (first on line 2)"),
                (6, "7 fields, but the header names 6 columns"),
                (7, "user_id is empty; email is empty; display_name is empty"),
            ]
        );
        assert!(matches!(&items[6], Item::Row(row) if row.user.user_id == "ok2" && row.line == 8));
    }

    #[test]
    fn a_row_that_is_not_utf8_is_a_bad_row() {
        let items = parse(&b"user_id,email,display_name\nx,x@y.org,\xff\xfe\n"[..]).unwrap();
        assert_eq!(bad(&items), [(2, "display_name is not UTF-8")]);
    }

    #[test]
    fn only_an_unreadable_header_refuses_the_file() {
        assert!(parse("".as_bytes()).unwrap_err().contains("empty"));
        assert!(
            parse("user_id,email\n".as_bytes())
                .unwrap_err()
                .contains("no display_name")
        );
        assert!(
            parse("user_id,email,display_name,usage_locaton\n".as_bytes())
                .unwrap_err()
                .contains("usage_locaton")
        );
        assert!(
            parse("user_id,email,email,display_name\n".as_bytes())
                .unwrap_err()
                .contains("twice")
        );
        assert_eq!(parse("user_id,email,display_name\n".as_bytes()).unwrap(), []);
    }

    #[test]
    fn emails_need_a_local_part_an_at_and_a_domain() {
        for good in ["a@b.co", "first.last+tag@mail.contoso.com", "a@localhost"] {
            assert!(plausible_email(good), "{good}");
        }
        for bad in ["a", "@b.co", "a@", "a@.b", "a@b.", "a b@c.d", "a@b@c.d"] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }
}
