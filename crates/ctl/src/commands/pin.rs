//! `dialinctl pin verify CONFERENCE_ID`: does a PIN open a conference ID, as
//! the bridge asks (`VerifyPin`)? For an operator checking what a user says
//! they type. The PIN is read from stdin, never taken on the command line
//! (where `ps` would show it), and never printed. Wrong tries count towards
//! the conference ID's lockout as the bridge's do.

use std::io::{BufRead, IsTerminal, Write};

use dialin_proto::settings::v1::VerifyPinRequest;

use super::Session;
use crate::{cli::PinCommand, failure::Failure};

pub async fn run(command: PinCommand, session: &Session) -> Result<(), Failure> {
    match command {
        PinCommand::Verify { conference_id } => verify(conference_id, session).await,
    }
}

async fn verify(conference_id: String, session: &Session) -> Result<(), Failure> {
    let pin = read_pin()?;
    let answer = session
        .client()
        .verify_pin(VerifyPinRequest {
            tenant_id: session.tenant.clone(),
            conference_id,
            pin,
        })
        .await?
        .into_inner();
    session.out.message_or_text(&answer, |answer| {
        if answer.valid {
            "valid: the PIN opens this conference ID\n".to_owned()
        } else {
            "not valid: the PIN does not open this conference ID\n".to_owned()
        }
    })
}

/// The first line of stdin, asked for on a terminal.
fn read_pin() -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("PIN (it shows as you type; pipe it in to keep it off the screen): ");
        std::io::stderr()
            .flush()
            .map_err(|error| Failure::Local(format!("cannot ask for the PIN: {error}")))?;
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|error| Failure::Local(format!("cannot read the PIN from stdin: {error}")))?;
    let pin = line.trim();
    if pin.is_empty() {
        return Err(Failure::Usage(
            "give the PIN on stdin: printf %s \"$pin\" | dialinctl pin verify ID".into(),
        ));
    }
    Ok(pin.to_owned())
}
