//! The results file of an import and what a rerun makes of it. One line per
//! input row, `tenant_id,user_id,email,outcome,pin,error_code,error_reason,message`:
//! `ok` with the new PIN, `already` (the user held a license: done too), or
//! `error`. A rerun for the same tenant reads the previous results, keeps the
//! lines of the users done there (with their PINs) and sends only the rest.

use std::{
    collections::HashMap,
    io::Read,
    path::{Path, PathBuf},
};

use dialin_proto::{
    errors::v1::ErrorReason,
    settings::v1::{AssignLicenseResult, EntryError},
};
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::rows::{BadRow, Item, Row};
use crate::failure::code_name;

pub const HEADER: [&str; 8] = [
    "tenant_id",
    "user_id",
    "email",
    "outcome",
    "pin",
    "error_code",
    "error_reason",
    "message",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Already,
    Error,
}

/// One line of the results file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultLine {
    pub tenant_id: String,
    pub user_id: String,
    pub email: String,
    pub outcome: Outcome,
    pub pin: String,
    pub error_code: String,
    pub error_reason: String,
    pub message: String,
}

/// Never the PIN.
impl std::fmt::Debug for ResultLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultLine")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("outcome", &self.outcome)
            .field("pin", &if self.pin.is_empty() { "" } else { "[redacted]" })
            .field("error_code", &self.error_code)
            .field("error_reason", &self.error_reason)
            .field("message", &self.message)
            .finish()
    }
}

impl ResultLine {
    /// Licensed or licensed already: nothing left to do for this user.
    pub fn is_done(&self) -> bool {
        matches!(self.outcome, Outcome::Ok | Outcome::Already)
    }

    /// An error about `row`; the message starts with its line of the file.
    fn error(tenant_id: &str, row: &Row, code: Code, reason: &str, message: &str) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            user_id: row.user.user_id.clone(),
            email: row.user.email.clone(),
            outcome: Outcome::Error,
            pin: String::new(),
            error_code: code_name(code).to_owned(),
            error_reason: reason.to_owned(),
            message: format!("line {}: {}", row.line, without_entry_index(message)),
        }
    }

    /// A line the file itself gets wrong: refused here, as the service would.
    pub fn bad_row(tenant_id: &str, bad: &BadRow) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            user_id: bad.user_id.clone(),
            email: bad.email.clone(),
            outcome: Outcome::Error,
            pin: String::new(),
            error_code: code_name(Code::InvalidArgument).to_owned(),
            error_reason: ErrorReason::InvalidField.as_str_name().to_owned(),
            message: format!("line {}: {}", bad.line, bad.message),
        }
    }

    /// What `AssignLicenses` answered for `row`.
    pub fn answered(tenant_id: &str, row: &Row, result: AssignLicenseResult) -> Self {
        match result.error {
            Some(error) => Self::refused(tenant_id, row, &error),
            None => Self {
                tenant_id: tenant_id.to_owned(),
                user_id: row.user.user_id.clone(),
                email: row.user.email.clone(),
                outcome: Outcome::Ok,
                pin: result.pin,
                error_code: String::new(),
                error_reason: String::new(),
                message: String::new(),
            },
        }
    }

    fn refused(tenant_id: &str, row: &Row, error: &EntryError) -> Self {
        let reason = ErrorReason::try_from(error.reason).unwrap_or(ErrorReason::Unspecified);
        let line = Self::error(
            tenant_id,
            row,
            Code::from_i32(error.code),
            reason.as_str_name(),
            &error.message,
        );
        if reason == ErrorReason::UserAlreadyLicensed {
            Self {
                outcome: Outcome::Already,
                ..line
            }
        } else {
            line
        }
    }

    /// `row` went in a call that failed with `status`. The service may have
    /// licensed it all the same (the call timed out, say, after its change was
    /// made): a rerun then finds it `already` licensed, with no PIN to show.
    pub fn call_failed(tenant_id: &str, row: &Row, status: &Status) -> Self {
        Self::not_licensed(
            tenant_id,
            row,
            status,
            &format!(
                "the AssignLicenses call failed: {}; it may have been licensed all the same (a rerun says `already` \
                 for it, and only `dialinctl user reset-pin` shows a PIN then)",
                status.message()
            ),
        )
    }

    /// `row` was not sent: an earlier call failed with `status`.
    pub fn not_sent(tenant_id: &str, row: &Row, status: &Status) -> Self {
        Self::not_licensed(
            tenant_id,
            row,
            status,
            &format!("not sent: an earlier AssignLicenses call failed: {}", status.message()),
        )
    }

    fn not_licensed(tenant_id: &str, row: &Row, status: &Status, message: &str) -> Self {
        let details = status.get_error_details();
        let reason = details.error_info().map(|info| info.reason.clone()).unwrap_or_default();
        Self::error(tenant_id, row, status.code(), &reason, message)
    }

    /// `row` has no answer in a response that should have had one.
    pub fn unanswered(tenant_id: &str, row: &Row) -> Self {
        Self::error(
            tenant_id,
            row,
            Code::Internal,
            ErrorReason::InternalError.as_str_name(),
            "the service answered fewer entries than it was sent",
        )
    }
}

/// A per-entry message without the entry's index in the call (`users[7]: `),
/// which means nothing to the file's reader: the line number says where.
fn without_entry_index(message: &str) -> &str {
    message
        .strip_prefix("users[")
        .and_then(|rest| rest.split_once("]: "))
        .filter(|(index, _)| index.bytes().all(|byte| byte.is_ascii_digit()))
        .map_or(message, |(_, rest)| rest)
}

/// `FILE.results.csv` beside `FILE` (`users.csv` → `users.results.csv`).
pub fn default_path(input: &Path) -> PathBuf {
    let stem = match input.extension() {
        Some(extension) if extension.eq_ignore_ascii_case("csv") => input.with_extension(""),
        _ => input.to_path_buf(),
    };
    let mut name = stem.into_os_string();
    name.push(".results.csv");
    PathBuf::from(name)
}

/// The lines of a previous results file.
pub fn read(input: impl Read) -> Result<Vec<ResultLine>, String> {
    let mut reader = csv::ReaderBuilder::new().from_reader(input);
    let header = reader.headers().map_err(|error| error.to_string())?;
    if header.iter().ne(HEADER) {
        return Err(format!("its header is not {}", HEADER.join(",")));
    }
    reader
        .deserialize()
        .map(|line| line.map_err(|error| error.to_string()))
        .collect()
}

/// What an import does with each input line.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Lines of users done in a previous run, kept as they were.
    pub kept: Vec<ResultLine>,
    /// Done lines of users no longer in the file: kept too, for their PINs.
    pub others: Vec<ResultLine>,
    /// Lines the file gets wrong.
    pub bad: Vec<ResultLine>,
    /// The rows to send.
    pub to_send: Vec<Row>,
}

/// Sends what is not done in `previous`; keeps what is. `Err` when
/// `previous` holds another tenant's results: they say nothing of this one.
pub fn plan(tenant_id: &str, items: Vec<Item>, previous: Vec<ResultLine>) -> Result<Plan, String> {
    if let Some(other) = previous.iter().find(|line| line.tenant_id != tenant_id) {
        return Err(format!(
            "it holds tenant {}'s results, not tenant {tenant_id}'s",
            other.tenant_id
        ));
    }
    let mut done: HashMap<String, ResultLine> = previous
        .into_iter()
        .filter(ResultLine::is_done)
        .map(|line| (line.user_id.clone(), line))
        .collect();
    let mut plan = Plan::default();
    for item in items {
        match item {
            Item::Bad(bad) => plan.bad.push(ResultLine::bad_row(tenant_id, &bad)),
            Item::Row(row) => match done.remove(&row.user.user_id) {
                Some(line) => plan.kept.push(line),
                None => plan.to_send.push(row),
            },
        }
    }
    // What is left is done for users the file no longer licenses.
    let mut others: Vec<ResultLine> = done.into_values().collect();
    others.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    plan.others = others;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use dialin_proto::settings::v1::{ConferencingUser, UserToLicense};

    use super::*;
    use crate::commands::licenses::rows::parse;

    fn row(user_id: &str) -> Row {
        Row {
            line: 2,
            user: UserToLicense {
                user_id: user_id.into(),
                email: format!("{user_id}@x.org"),
                display_name: user_id.into(),
                ..Default::default()
            },
        }
    }

    fn line(user_id: &str, outcome: Outcome, pin: &str) -> ResultLine {
        ResultLine {
            tenant_id: "t".into(),
            user_id: user_id.into(),
            email: format!("{user_id}@x.org"),
            outcome,
            pin: pin.into(),
            error_code: String::new(),
            error_reason: String::new(),
            message: String::new(),
        }
    }

    #[test]
    fn a_rerun_sends_only_what_is_not_done_and_keeps_the_pins() {
        let items = parse(
            "user_id,email,display_name\na,a@x.org,A\nb,b@x.org,B\nc,c@x.org,C\nd,d@x.org,D\nbad,bad,Bad\n".as_bytes(),
        )
        .unwrap();
        let previous = vec![
            line("a", Outcome::Ok, "12345"),
            line("b", Outcome::Already, ""),
            line("c", Outcome::Error, ""),
            line("gone", Outcome::Ok, "55555"),
            line("gone-bad", Outcome::Error, ""),
        ];
        let plan = plan("t", items, previous).unwrap();
        assert_eq!(
            plan.kept,
            [line("a", Outcome::Ok, "12345"), line("b", Outcome::Already, "")]
        );
        let sent: Vec<&str> = plan.to_send.iter().map(|row| row.user.user_id.as_str()).collect();
        assert_eq!(sent, ["c", "d"]);
        assert_eq!(plan.others, [line("gone", Outcome::Ok, "55555")]);
        assert_eq!(plan.bad.len(), 1);
        let bad = &plan.bad[0];
        assert_eq!(
            (bad.error_code.as_str(), bad.error_reason.as_str()),
            ("INVALID_ARGUMENT", "INVALID_FIELD")
        );
        assert!(bad.message.starts_with("line 6: email"), "{}", bad.message);
    }

    #[test]
    fn a_first_run_sends_every_good_row() {
        let items = parse("user_id,email,display_name\na,a@x.org,A\n".as_bytes()).unwrap();
        let plan = plan("t", items, Vec::new()).unwrap();
        assert_eq!(plan.to_send.len(), 1);
        assert!(plan.kept.is_empty() && plan.others.is_empty() && plan.bad.is_empty());
    }

    #[test]
    fn answers_become_outcomes() {
        let licensed = ResultLine::answered(
            "t",
            &row("a"),
            AssignLicenseResult {
                user: Some(ConferencingUser::default()),
                pin: "24680".into(),
                error: None,
            },
        );
        assert_eq!(licensed, line("a", Outcome::Ok, "24680"));

        let refused = |code: Code, reason: ErrorReason| {
            ResultLine::answered(
                "t",
                &row("a"),
                AssignLicenseResult {
                    user: None,
                    pin: String::new(),
                    error: Some(EntryError {
                        code: code as i32,
                        message: "users[0]: why".into(),
                        reason: reason.into(),
                    }),
                },
            )
        };
        let already = refused(Code::FailedPrecondition, ErrorReason::UserAlreadyLicensed);
        assert_eq!(already.outcome, Outcome::Already);
        assert!(already.is_done());
        let taken = refused(Code::AlreadyExists, ErrorReason::EmailTaken);
        assert_eq!(
            (
                taken.outcome,
                taken.error_code.as_str(),
                taken.error_reason.as_str(),
                taken.message.as_str()
            ),
            (Outcome::Error, "ALREADY_EXISTS", "EMAIL_TAKEN", "line 2: why")
        );
        assert!(!taken.is_done());

        let failed = ResultLine::call_failed("t", &row("a"), &Status::deadline_exceeded("too slow"));
        assert_eq!(
            (failed.outcome, failed.error_code.as_str()),
            (Outcome::Error, "DEADLINE_EXCEEDED")
        );
        assert!(failed.message.contains("too slow") && failed.message.contains("may have been licensed"));
        let unsent = ResultLine::not_sent("t", &row("b"), &Status::unavailable("connection refused"));
        assert!(unsent.message.starts_with("line 2: not sent"), "{}", unsent.message);
        assert_eq!(without_entry_index("users[x]: y"), "users[x]: y");
        assert_eq!(without_entry_index("users[12]: y"), "y");
    }

    #[test]
    fn the_results_file_sits_beside_the_input() {
        assert_eq!(
            default_path(Path::new("/in/users.csv")),
            Path::new("/in/users.results.csv")
        );
        assert_eq!(default_path(Path::new("users.CSV")), Path::new("users.results.csv"));
        assert_eq!(default_path(Path::new("users")), Path::new("users.results.csv"));
        assert_eq!(default_path(Path::new("a.b.txt")), Path::new("a.b.txt.results.csv"));
    }

    #[test]
    fn results_round_trip_through_csv() {
        let lines = vec![
            line("a", Outcome::Ok, "01234"),
            ResultLine {
                message: "quote \" and, comma".into(),
                ..line("b", Outcome::Error, "")
            },
        ];
        let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        writer.write_record(HEADER).unwrap();
        for line in &lines {
            writer.serialize(line).unwrap();
        }
        let bytes = writer.into_inner().unwrap();
        assert!(String::from_utf8_lossy(&bytes).starts_with(
            "tenant_id,user_id,email,outcome,pin,error_code,error_reason,message\nt,a,a@x.org,ok,01234,,,\n"
        ));
        assert_eq!(read(bytes.as_slice()).unwrap(), lines);
        assert!(read("user_id,email\n".as_bytes()).unwrap_err().contains("header"));
    }

    #[test]
    fn another_tenants_results_are_refused_and_no_pin_is_debug_printed() {
        let items = parse("user_id,email,display_name\na,a@x.org,A\n".as_bytes()).unwrap();
        let theirs = ResultLine {
            tenant_id: "other".into(),
            ..line("a", Outcome::Ok, "97531")
        };
        let refused = plan("t", items, vec![theirs.clone()]).unwrap_err();
        assert!(refused.contains("tenant other"), "{refused}");
        assert!(!format!("{theirs:?}").contains("97531"));
    }
}
