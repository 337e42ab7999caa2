//! `dialinctl licenses import FILE.csv`: licenses the users of a CSV file in
//! `AssignLicenses` calls of 1,000, resumably. Every input row gets a line in
//! the results file (mode 0600: it holds PINs), written as each call returns,
//! so a rerun after a failure or an interruption sends only what is missing.
//! A bad row fails only itself. The progress bar is drawn only on a terminal.

mod results;
mod rows;

use std::{
    fs::{File, OpenOptions, Permissions},
    io::{BufReader, IsTerminal},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
    time::Duration,
};

use dialin_proto::settings::v1::{AssignLicenseResult, AssignLicensesRequest};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use results::{Outcome, ResultLine};
use rows::Row;
use serde::Serialize;
use tonic::Status;

use super::Session;
use crate::{
    cli::{ImportArgs, LicensesCommand},
    confirm::confirm,
    failure::Failure,
    output::print_json,
};

/// Users per `AssignLicenses` call: the most the service takes.
const BATCH: usize = 1000;
/// How many failed rows are listed on stderr (all are in the results file).
const LISTED_FAILURES: usize = 20;

pub async fn run(command: LicensesCommand, session: &Session) -> Result<(), Failure> {
    match command {
        LicensesCommand::Import(args) => import(args, session).await,
    }
}

/// What an import did (or, dry, would do), for stderr and for JSON.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    tenant: String,
    file: String,
    results: String,
    dry_run: bool,
    /// Lines of the file after its header.
    rows: usize,
    /// Done in an earlier run (per the results file): not sent again.
    skipped: usize,
    /// Lines the file gets wrong: not sent.
    malformed: usize,
    /// Rows sent to the service (dry: to be sent).
    sent: usize,
    licensed: usize,
    already: usize,
    /// Rows that ended in an error, the malformed ones included.
    failed: usize,
}

impl Summary {
    fn count(&mut self, line: &ResultLine) {
        match line.outcome {
            Outcome::Ok => self.licensed += 1,
            Outcome::Already => self.already += 1,
            Outcome::Error => self.failed += 1,
        }
    }

    /// The line that ends an import on stderr.
    fn line(&self) -> String {
        if self.dry_run {
            return format!(
                "dry run for tenant {}, {} rows: {} would be sent, {} skipped (done in an earlier run), \
                 {} malformed; nothing was sent or written",
                self.tenant, self.rows, self.sent, self.skipped, self.malformed
            );
        }
        format!(
            "tenant {}, {} rows: {} licensed, {} already licensed, {} skipped (done in an earlier run), \
             {} failed ({} malformed); results written to {} (mode 0600: it holds PINs)",
            self.tenant,
            self.rows,
            self.licensed,
            self.already,
            self.skipped,
            self.failed,
            self.malformed,
            self.results
        )
    }
}

async fn import(args: ImportArgs, session: &Session) -> Result<(), Failure> {
    let results_path = args
        .results
        .clone()
        .unwrap_or_else(|| results::default_path(&args.file));
    if same_file(&args.file, &results_path) {
        return Err(Failure::Usage(format!(
            "--results {} is the input file",
            results_path.display()
        )));
    }
    let input = File::open(&args.file)
        .map_err(|error| Failure::Usage(format!("cannot read {}: {error}", args.file.display())))?;
    let items = rows::parse(BufReader::new(input))
        .map_err(|error| Failure::Usage(format!("{}: {error}", args.file.display())))?;
    let rows = items.len();
    let plan = results::plan(&session.tenant, items, read_previous(&results_path)?).map_err(|error| {
        Failure::Usage(format!(
            "the earlier results file {}: {error}; name another with --results",
            results_path.display()
        ))
    })?;
    let mut summary = Summary {
        tenant: session.tenant.clone(),
        file: args.file.display().to_string(),
        results: results_path.display().to_string(),
        dry_run: args.dry_run,
        rows,
        skipped: plan.kept.len(),
        malformed: plan.bad.len(),
        ..Summary::default()
    };
    let mut failures: Vec<ResultLine> = plan.bad.clone();
    if args.dry_run {
        summary.sent = plan.to_send.len();
        summary.failed = summary.malformed;
        return finish(&summary, &failures, session);
    }
    if !plan.to_send.is_empty() {
        confirm(
            &format!("License {} users of tenant {}?", plan.to_send.len(), session.tenant),
            args.yes,
        )?;
    }

    let mut file = ResultsFile::replace(&results_path, plan.kept.iter().chain(&plan.others).chain(&plan.bad))?;
    summary.failed = plan.bad.len();
    let bar = progress(plan.to_send.len())?;
    let mut client = session.client();
    let mut stopped: Option<Status> = None;
    for batch in plan.to_send.chunks(BATCH) {
        let lines: Vec<ResultLine> = match &stopped {
            Some(status) => batch
                .iter()
                .map(|row| ResultLine::not_sent(&session.tenant, row, status))
                .collect(),
            None => {
                let request = AssignLicensesRequest {
                    tenant_id: session.tenant.clone(),
                    users: batch.iter().map(|row| row.user.clone()).collect(),
                };
                summary.sent += batch.len();
                match client.assign_licenses(request).await {
                    Ok(response) => answered(&session.tenant, batch, response.into_inner().results),
                    Err(status) => {
                        let lines = batch
                            .iter()
                            .map(|row| ResultLine::call_failed(&session.tenant, row, &status))
                            .collect();
                        stopped = Some(status);
                        lines
                    }
                }
            }
        };
        for line in &lines {
            summary.count(line);
        }
        failures.extend(lines.iter().filter(|line| line.outcome == Outcome::Error).cloned());
        file.append(&lines)?;
        bar.inc(batch.len() as u64);
    }
    bar.finish();
    finish(&summary, &failures, session)?;
    match stopped {
        Some(status) => Err(status.into()),
        None if summary.failed > 0 => Err(Failure::Reported),
        None => Ok(()),
    }
}

/// Says how it went: failures and the summary on stderr, JSON on stdout.
/// A dry run that found malformed rows fails.
fn finish(summary: &Summary, failures: &[ResultLine], session: &Session) -> Result<(), Failure> {
    for failure in failures.iter().take(LISTED_FAILURES) {
        eprintln!(
            "{} {}: {}: {}",
            failure.error_code,
            failure.error_reason,
            if failure.user_id.is_empty() {
                "-"
            } else {
                &failure.user_id
            },
            failure.message
        );
    }
    if failures.len() > LISTED_FAILURES {
        let more = failures.len() - LISTED_FAILURES;
        if summary.dry_run {
            eprintln!("… and {more} more malformed rows");
        } else {
            eprintln!("… and {more} more failed rows (see {})", summary.results);
        }
    }
    eprintln!("{}", summary.line());
    if session.out.is_json() {
        print_json(summary)?;
    }
    if summary.dry_run && summary.failed > 0 {
        return Err(Failure::Reported);
    }
    Ok(())
}

/// The result of each row of `batch`, from the call's answers in order.
fn answered(tenant_id: &str, batch: &[Row], answers: Vec<AssignLicenseResult>) -> Vec<ResultLine> {
    let mut answers = answers.into_iter();
    batch
        .iter()
        .map(|row| match answers.next() {
            Some(result) => ResultLine::answered(tenant_id, row, result),
            None => ResultLine::unanswered(tenant_id, row),
        })
        .collect()
}

/// The lines of an earlier run's results file; none when there is no file.
fn read_previous(path: &Path) -> Result<Vec<ResultLine>, Failure> {
    match File::open(path) {
        Ok(file) => results::read(BufReader::new(file)).map_err(|error| {
            Failure::Usage(format!(
                "the earlier results file {}: {error}; move it away to start afresh",
                path.display()
            ))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(Failure::Local(format!("cannot read {}: {error}", path.display()))),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(a), Ok(b)) if a == b
        )
}

/// A bar on stderr when it is a terminal; none otherwise (piped output stays clean).
fn progress(total: usize) -> Result<ProgressBar, Failure> {
    if total == 0 || !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let style = ProgressStyle::with_template("{spinner} licensing [{bar:40}] {pos}/{len} users, {per_sec}, {eta} left")
        .map_err(|error| Failure::Local(format!("progress bar: {error}")))?
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr()).with_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    Ok(bar)
}

/// The results file, written line by line as calls return.
struct ResultsFile {
    writer: csv::Writer<File>,
    path: String,
}

impl ResultsFile {
    /// Puts a new results file at `path`, readable by its owner only, holding
    /// the header and `kept`: written beside it first, then renamed over the
    /// earlier one, so that a failed write loses none of its PINs. Lines
    /// appended later go to the same file, under its new name.
    fn replace<'a>(path: &Path, kept: impl IntoIterator<Item = &'a ResultLine>) -> Result<Self, Failure> {
        let shown = path.display().to_string();
        let failed = |error: std::io::Error| Failure::Local(format!("cannot write {shown}: {error}"));
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(failed)?;
        // A file left from an earlier attempt keeps its mode when opened: set it.
        file.set_permissions(Permissions::from_mode(0o600)).map_err(failed)?;
        let mut results = Self {
            writer: csv::WriterBuilder::new().has_headers(false).from_writer(file),
            path: shown.clone(),
        };
        results
            .writer
            .write_record(results::HEADER)
            .map_err(|error| results.failed(error))?;
        results.append(kept)?;
        std::fs::rename(&partial, path).map_err(|error| results.failed(error))?;
        Ok(results)
    }

    /// Writes `lines` and puts them on disk before going on.
    fn append<'a>(&mut self, lines: impl IntoIterator<Item = &'a ResultLine>) -> Result<(), Failure> {
        for line in lines {
            self.writer.serialize(line).map_err(|error| self.failed(error))?;
        }
        self.writer.flush().map_err(|error| self.failed(error))?;
        self.writer.get_ref().sync_data().map_err(|error| self.failed(error))
    }

    fn failed(&self, error: impl std::fmt::Display) -> Failure {
        Failure::Local(format!("cannot write {}: {error}", self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_counts_everything() {
        let summary = Summary {
            tenant: "t".into(),
            file: "u.csv".into(),
            results: "u.results.csv".into(),
            dry_run: false,
            rows: 10,
            skipped: 2,
            malformed: 1,
            sent: 7,
            licensed: 5,
            already: 1,
            failed: 2,
        };
        assert_eq!(
            summary.line(),
            "tenant t, 10 rows: 5 licensed, 1 already licensed, 2 skipped (done in an earlier run), \
             2 failed (1 malformed); results written to u.results.csv (mode 0600: it holds PINs)"
        );
        let dry = Summary {
            dry_run: true,
            ..summary
        };
        assert!(
            dry.line()
                .starts_with("dry run for tenant t, 10 rows: 7 would be sent, 2 skipped")
        );
        let json = serde_json::to_value(&dry).unwrap();
        assert_eq!(json["dryRun"], true);
        assert_eq!(json["sent"], 7);
    }
}
