//! `tenant get | set | reset` and `numbers add | list | replace`.

use super::{add_toll_number, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_settings_are_read_changed_and_reset() {
    let (app, ctl) = start().await;
    let settings = ctl.json(&["tenant", "get"]).await;
    assert_eq!(settings["tenantId"], "t");
    assert_eq!(settings["automaticallySendEmailsToUsers"], true);
    assert_eq!(settings["pinLength"], 5);
    assert_eq!(
        settings["version"], "0",
        "canonical proto JSON: 64-bit integers are strings"
    );

    let changed = ctl
        .json(&[
            "tenant",
            "set",
            "--automatically-send-emails-to-users=false",
            "--pin-length",
            "6",
            "--default-locale",
            "fr-FR",
        ])
        .await;
    assert_eq!(changed["automaticallySendEmailsToUsers"], false);
    assert_eq!(changed["pinLength"], 6);
    assert_eq!(changed["defaultLocale"], "fr-FR");
    assert_eq!(changed["version"], "1");

    let stale = ctl
        .run(&["tenant", "set", "--pin-length", "7", "--expected-version", "0"])
        .await;
    stale.refused("ABORTED", "VERSION_MISMATCH");
    let current = ctl
        .json(&["tenant", "set", "--pin-length", "7", "--expected-version", "1"])
        .await;
    assert_eq!(
        (current["pinLength"].as_u64(), current["version"].as_str()),
        (Some(7), Some("2"))
    );
    let invalid = ctl.run(&["tenant", "set", "--pin-length", "13"]).await;
    invalid.refused("INVALID_ARGUMENT", "INVALID_FIELD");
    assert!(invalid.stderr.contains("\nfield: pin_length: "), "{invalid:#?}");
    ctl.run(&["tenant", "set", "--send-email-from-override=true"])
        .await
        .refused("INVALID_ARGUMENT", "INVALID_FIELD");

    let table = ctl.run(&["--output", "table", "tenant", "get"]).await;
    assert_eq!(table.code, 0, "{table:#?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines[0], "tenant_id                           t");
    assert_eq!(lines[1], "automatically_send_emails_to_users  false");
    assert_eq!(lines[2], "pin_length                          7");
    assert_eq!(lines[7], "version                             2");

    let reset = ctl.json(&["tenant", "reset"]).await;
    assert_eq!(reset["automaticallySendEmailsToUsers"], true);
    assert_eq!(reset["pinLength"], 5);
    assert_eq!(reset["defaultLocale"], settings["defaultLocale"]);
    assert_eq!(reset["version"], "3");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_are_added_listed_and_replaced_after_confirmation() {
    let (app, ctl) = start().await;
    add_toll_number(&ctl, "t").await;
    let second = ctl
        .json(&["numbers", "add", "+14255550111", "--type", "toll", "--country", "US"])
        .await;
    assert_eq!(
        (second["number"].as_str(), second["type"].as_str()),
        (Some("+14255550111"), Some("TOLL"))
    );
    let free = ctl
        .json(&["numbers", "add", "+18005550199", "--type", "toll-free"])
        .await;
    assert_eq!(free["type"], "TOLL_FREE");
    assert_eq!(free["country"], "");

    let listed = ctl.json(&["numbers", "list"]).await;
    let numbers: Vec<(&str, &str)> = listed["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["number"].as_str().unwrap(), n["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        numbers,
        [
            ("+14255550100", "TOLL"),
            ("+14255550111", "TOLL"),
            ("+18005550199", "TOLL_FREE")
        ]
    );
    let table = ctl.run(&["--output", "table", "numbers", "list"]).await;
    assert_eq!(
        table.stdout,
        "NUMBER        TYPE       COUNTRY\n\
         +14255550100  TOLL       US\n\
         +14255550111  TOLL       US\n\
         +18005550199  TOLL_FREE\n"
    );

    ctl.run(&["numbers", "add", "+1", "--type", "toll"])
        .await
        .refused("INVALID_ARGUMENT", "INVALID_FIELD");
    ctl.run(&["numbers", "add", "+14255550100", "--type", "toll-free"])
        .await
        .refused("ALREADY_EXISTS", "NUMBER_TAKEN");

    for user in ["ann", "ben"] {
        let email = format!("{user}@example.com");
        ctl.json(&["user", "license", user, "--email", &email, "--name", user])
            .await;
    }
    // Many users change: a script must say --yes.
    let refused = ctl
        .run(&[
            "numbers",
            "replace",
            "--from",
            "+14255550100",
            "--to",
            "+14255550111",
            "--type",
            "toll",
        ])
        .await;
    refused.usage_error("pass --yes");
    assert!(
        refused.stderr.contains("whose default TOLL number is +14255550100"),
        "{refused:#?}"
    );
    assert_eq!(ctl.json(&["user", "get", "ann"]).await["tollNumber"], "+14255550100");

    let replaced = ctl
        .json(&[
            "numbers",
            "replace",
            "--from",
            "+14255550100",
            "--to",
            "+14255550111",
            "--type",
            "toll",
            "--yes",
        ])
        .await;
    assert_eq!(replaced["usersUpdated"], 2);
    assert_eq!(ctl.json(&["user", "get", "ben"]).await["tollNumber"], "+14255550111");
    let again = ctl
        .run(&[
            "--output",
            "table",
            "numbers",
            "replace",
            "--from",
            "+14255550100",
            "--to",
            "+14255550111",
            "--type",
            "toll",
            "--yes",
        ])
        .await;
    assert_eq!(again.stdout, "0 users updated\n", "{again:#?}");
    app.stop().await;
}
