//! `licenses import`: bad rows fail alone, the results file (mode 0600) holds
//! a line per row, a rerun licenses only what is missing, and nothing is
//! changed by a dry run or by a script that did not say --yes.

use std::{collections::HashMap, os::unix::fs::PermissionsExt};

use super::{Ctl, add_toll_number, results_lines, start, write_users};

/// user_id → (outcome, pin, error_code, error_reason, message), from a results file.
fn outcomes(ctl: &Ctl, name: &str) -> HashMap<String, [String; 5]> {
    let mut reader = csv_lines(&std::fs::read_to_string(ctl.path(name)).unwrap());
    let header = reader.remove(0);
    assert_eq!(
        header,
        "tenant_id,user_id,email,outcome,pin,error_code,error_reason,message"
    );
    reader
        .into_iter()
        .map(|line| {
            let fields = split_csv(&line);
            assert_eq!(fields[0], "t", "the tenant of every line: {line}");
            let key = if fields[1].is_empty() {
                fields[7].clone()
            } else {
                fields[1].clone()
            };
            (
                key,
                [
                    fields[3].clone(),
                    fields[4].clone(),
                    fields[5].clone(),
                    fields[6].clone(),
                    fields[7].clone(),
                ],
            )
        })
        .collect()
}

fn csv_lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// The fields of one CSV line (quotes as the csv crate writes them).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

fn is_pin(pin: &str) -> bool {
    pin.len() == 5 && pin.bytes().all(|b| b.is_ascii_digit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_fail_alone_and_every_row_gets_a_line() {
    let (app, ctl) = start().await;
    add_toll_number(&ctl, "t").await;
    ctl.json(&["user", "license", "old", "--email", "old@example.com", "--name", "Old"])
        .await;
    std::fs::write(
        ctl.path("users.csv"),
        "user_id,email,display_name,locale,usage_location,toll_number\n\
         ann,ann@example.com,Ann,fr-FR,FR,\n\
         bad-mail,not-an-email,Bad Mail,,,\n\
         no-name,no-name@example.com,,,,\n\
         ann,ann2@example.com,Ann Again,,,\n\
         wrong-number,wrong@example.com,Wrong Number,,,+14255550199\n\
         taken,OLD@example.com,Taken,,,\n\
         old,old@example.com,Old,,,\n\
         extra,extra@example.com,Extra,,,,surplus\n\
         \"broken,broken@example.com,Broken\n",
    )
    .unwrap();
    let run = ctl
        .run(&["licenses", "import", ctl.path("users.csv").to_str().unwrap(), "--yes"])
        .await;
    assert_eq!(run.code, 1, "a failed row fails the import: {run:#?}");
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).expect("the summary on stdout");
    assert_eq!(summary["rows"], 9);
    assert_eq!(summary["licensed"], 1);
    assert_eq!(summary["already"], 1);
    assert_eq!(summary["malformed"], 5);
    assert_eq!(summary["failed"], 7);
    assert_eq!(summary["sent"], 4);
    let results = ctl.path("users.results.csv");
    assert_eq!(summary["results"], results.to_str().unwrap());
    assert!(
        run.stderr.contains(&format!(
            "results written to {} (mode 0600: it holds PINs)",
            results.display()
        )),
        "{run:#?}"
    );
    assert_eq!(std::fs::metadata(&results).unwrap().permissions().mode() & 0o777, 0o600);

    let lines = results_lines(&results);
    assert_eq!(lines.len(), 10, "a header and a line per row: {lines:#?}");
    let outcomes = outcomes(&ctl, "users.results.csv");
    let ann = &outcomes["ann"];
    assert_eq!(ann[0], "ok");
    assert!(is_pin(&ann[1]), "{ann:?}");
    assert_eq!(
        outcomes["old"][..4],
        ["already", "", "FAILED_PRECONDITION", "USER_ALREADY_LICENSED"]
    );
    assert_eq!(
        outcomes["bad-mail"][..4],
        ["error", "", "INVALID_ARGUMENT", "INVALID_FIELD"]
    );
    assert!(
        outcomes["bad-mail"][4].starts_with("line 3: email"),
        "{:?}",
        outcomes["bad-mail"]
    );
    assert!(outcomes["no-name"][4].contains("display_name is empty"));
    let again = lines.iter().find(|line| line.contains("ann2@example.com")).unwrap();
    assert!(again.contains("appears more than once (first on line 2)"), "{again}");
    assert_eq!(
        outcomes["wrong-number"][..4],
        ["error", "", "FAILED_PRECONDITION", "NUMBER_NOT_ON_BRIDGE"]
    );
    assert!(
        outcomes["wrong-number"][4].starts_with("line 6: "),
        "{:?}",
        outcomes["wrong-number"]
    );
    assert_eq!(outcomes["taken"][..4], ["error", "", "ALREADY_EXISTS", "EMAIL_TAKEN"]);
    assert!(
        outcomes["extra"][4].starts_with("line 9: 7 fields"),
        "{:?}",
        outcomes["extra"]
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains(",error,,INVALID_ARGUMENT,INVALID_FIELD,line 10: email is empty")),
        "the unterminated quote swallows the rest of the file: {lines:#?}"
    );
    // stderr lists each failed row; stdout is only the JSON.
    assert!(
        run.stderr
            .contains("FAILED_PRECONDITION NUMBER_NOT_ON_BRIDGE: wrong-number: line 6: "),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains(&ann[1]), "PINs go to the results file only");

    let user = ctl.json(&["user", "get", "ann@example.com"]).await;
    assert_eq!(
        (user["locale"].as_str(), user["usageLocation"].as_str()),
        (Some("fr-FR"), Some("FR"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_licenses_only_what_is_missing_and_keeps_the_pins() {
    let (app, ctl) = start().await;
    add_toll_number(&ctl, "t").await;
    let file = ctl.path("team.csv");
    write_users(&file, "m", 25);
    let results = ctl.path("out/team-results.csv");
    std::fs::create_dir_all(results.parent().unwrap()).unwrap();
    let import = || {
        let ctl = ctl.clone();
        let (file, results) = (file.clone(), results.clone());
        async move {
            ctl.run(&[
                "licenses",
                "import",
                file.to_str().unwrap(),
                "--results",
                results.to_str().unwrap(),
                "--yes",
            ])
            .await
        }
    };

    let first = import().await.json();
    assert_eq!(
        (first["sent"].as_u64(), first["licensed"].as_u64()),
        (Some(25), Some(25))
    );
    let pins = |path: &std::path::Path| -> HashMap<String, String> {
        results_lines(path)
            .iter()
            .skip(1)
            .map(|line| {
                let fields = split_csv(line);
                (fields[1].clone(), fields[4].clone())
            })
            .collect()
    };
    let first_pins = pins(&results);
    assert_eq!(first_pins.len(), 25);
    assert!(first_pins.values().all(|pin| is_pin(pin)));

    // The same file and results for another tenant: those results say
    // nothing of it, so nothing is skipped on their word, and nothing is sent.
    let other = ctl
        .tenant("other")
        .run(&[
            "licenses",
            "import",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--yes",
        ])
        .await;
    assert_eq!(other.code, 2, "{other:#?}");
    assert!(other.stderr.contains("holds tenant t's results"), "{other:#?}");
    assert_eq!(pins(&results), first_pins, "the results file is untouched");

    let second = import().await.json();
    assert_eq!(
        (
            second["sent"].as_u64(),
            second["skipped"].as_u64(),
            second["licensed"].as_u64()
        ),
        (Some(0), Some(25), Some(0)),
        "nothing left to send"
    );
    assert_eq!(pins(&results), first_pins, "the PINs are kept");

    // Lose five lines: only those five are sent again (licensed already: done too).
    let mut lines = results_lines(&results);
    let lost: Vec<String> = lines.drain(3..8).map(|line| split_csv(&line)[1].clone()).collect();
    std::fs::write(&results, lines.join("\n") + "\n").unwrap();
    std::fs::set_permissions(&results, std::fs::Permissions::from_mode(0o644)).unwrap();
    let third = import().await.json();
    assert_eq!(
        (
            third["sent"].as_u64(),
            third["skipped"].as_u64(),
            third["already"].as_u64()
        ),
        (Some(5), Some(20), Some(5))
    );
    let third_pins = pins(&results);
    assert_eq!(third_pins.len(), 25);
    for (user_id, pin) in &first_pins {
        let expected = if lost.contains(user_id) { "" } else { pin.as_str() };
        assert_eq!(third_pins[user_id], expected, "{user_id}");
    }
    assert_eq!(
        std::fs::metadata(&results).unwrap().permissions().mode() & 0o777,
        0o600,
        "a rewritten results file is made private again"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_or_a_script_without_yes_changes_nothing() {
    let (app, ctl) = start().await;
    add_toll_number(&ctl, "t").await;
    let file = ctl.path("new.csv");
    write_users(&file, "n", 4);
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("n-bad,nope,Nope,,,\n");
    std::fs::write(&file, text).unwrap();
    let results = ctl.path("new.results.csv");

    let dry = ctl
        .run(&["licenses", "import", file.to_str().unwrap(), "--dry-run"])
        .await;
    assert_eq!(dry.code, 1, "a malformed row fails a dry run too: {dry:#?}");
    let summary: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(summary["dryRun"], true);
    assert_eq!(
        (
            summary["rows"].as_u64(),
            summary["sent"].as_u64(),
            summary["malformed"].as_u64()
        ),
        (Some(5), Some(4), Some(1))
    );
    assert!(
        dry.stderr
            .contains("dry run for tenant t, 5 rows: 4 would be sent, 0 skipped (done in an earlier run), 1 malformed"),
        "{dry:#?}"
    );
    assert!(!results.exists(), "a dry run writes nothing");

    let refused = ctl.run(&["licenses", "import", file.to_str().unwrap()]).await;
    refused.usage_error("pass --yes");
    assert!(refused.stderr.contains("License 4 users of tenant t?"), "{refused:#?}");
    assert!(!results.exists());
    assert_eq!(
        ctl.json(&["user", "list"]).await["users"],
        serde_json::json!([]),
        "nobody licensed"
    );

    // A good file's dry run passes.
    write_users(&file, "n", 4);
    let clean = ctl
        .run(&["licenses", "import", file.to_str().unwrap(), "--dry-run"])
        .await;
    assert_eq!(clean.json()["sent"], 4);
    ctl.run(&["licenses", "import", ctl.path("nothing.csv").to_str().unwrap(), "--yes"])
        .await
        .usage_error("nothing.csv");
    std::fs::write(ctl.path("header.csv"), "id,mail,name\n").unwrap();
    ctl.run(&["licenses", "import", ctl.path("header.csv").to_str().unwrap(), "--yes"])
        .await
        .usage_error("unknown column \"id\"");
    app.stop().await;
}
