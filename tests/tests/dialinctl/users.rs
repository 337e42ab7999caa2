//! `user …`: one user from license to unlicense, by user_id or by email; the
//! PIN printed once by the commands that make one; listing with filters.

use serde_json::Value;

use super::{add_toll_number, start};

fn is_pin(value: &Value, length: usize) -> bool {
    value
        .as_str()
        .is_some_and(|pin| pin.len() == length && pin.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_from_license_to_unlicense() {
    let (app, ctl) = start().await;
    add_toll_number(&ctl, "t").await;
    ctl.json(&["numbers", "add", "+14255550111", "--type", "toll", "--country", "US"])
        .await;
    ctl.json(&[
        "numbers",
        "add",
        "+18005550199",
        "--type",
        "toll-free",
        "--country",
        "US",
    ])
    .await;

    let licensed = ctl
        .json(&[
            "user",
            "license",
            "alice",
            "--email",
            "alice@example.com",
            "--name",
            "Alice Smith",
            "--locale",
            "fr-FR",
            "--usage-location",
            "US",
            "--toll-free-number",
            "+18005550199",
        ])
        .await;
    assert!(is_pin(&licensed["pin"], 5), "{licensed}");
    let user = &licensed["user"];
    assert_eq!(user["userId"], "alice");
    assert_eq!(user["displayName"], "Alice Smith");
    assert_eq!(user["provider"], "HOSTED");
    assert_eq!(user["tollNumber"], "+14255550100");
    assert_eq!(user["tollFreeNumber"], "+18005550199");
    let conference_id = user["conferenceId"].as_str().unwrap().to_owned();
    assert_eq!(conference_id.len(), 7);

    // On a terminal (here: asked for) the PIN is said to be shown once.
    let bob = ctl
        .run(&[
            "--output",
            "table",
            "user",
            "license",
            "bob",
            "--email",
            "bob@example.com",
            "--name",
            "Bob",
        ])
        .await;
    assert_eq!(bob.code, 0, "{bob:#?}");
    assert!(
        bob.stdout.starts_with("tenant_id         t\nuser_id           bob\n"),
        "{}",
        bob.stdout
    );
    let pin_line = bob
        .stdout
        .lines()
        .find(|line| line.starts_with("PIN: "))
        .expect("a PIN line");
    assert!(is_pin(&Value::from(&pin_line[5..]), 5), "{pin_line}");
    assert!(bob.stdout.contains("shown once"), "{}", bob.stdout);
    ctl.run(&["user", "license", "bob", "--email", "bob2@example.com", "--name", "Bob"])
        .await
        .refused("FAILED_PRECONDITION", "USER_ALREADY_LICENSED");
    ctl.run(&[
        "user",
        "license",
        "carl",
        "--email",
        "BOB@example.com",
        "--name",
        "Carl",
    ])
    .await
    .refused("ALREADY_EXISTS", "EMAIL_TAKEN");

    // USER is a user_id or an email, in any case.
    let by_id = ctl.json(&["user", "get", "alice"]).await;
    assert_eq!(ctl.json(&["user", "get", "Alice@Example.com"]).await, by_id);
    assert_eq!(by_id["locale"], "fr-FR");

    let reset = ctl.json(&["user", "reset-pin", "alice@example.com"]).await;
    assert!(is_pin(&reset["pin"], 5), "{reset}");
    assert_eq!(reset["user"]["userId"], "alice");
    let own = ctl.json(&["user", "reset-pin", "alice", "--self-service"]).await;
    assert!(is_pin(&own["pin"], 5), "{own}");

    let new_id = ctl.json(&["user", "reset-conference-id", "alice@example.com"]).await;
    assert_ne!(new_id["conferenceId"], conference_id.as_str());
    assert_eq!(new_id["conferenceId"].as_str().map(str::len), Some(7));

    let moved = ctl
        .json(&["user", "set-numbers", "alice", "--toll", "+14255550111"])
        .await;
    assert_eq!(moved["tollNumber"], "+14255550111");
    assert_eq!(moved["tollFreeNumber"], "+18005550199");
    let cleared = ctl
        .json(&["user", "set-numbers", "alice@example.com", "--toll-free", ""])
        .await;
    assert_eq!(cleared["tollFreeNumber"], "");
    ctl.run(&["user", "set-numbers", "alice", "--toll", "+14255550122"])
        .await
        .refused("FAILED_PRECONDITION", "NUMBER_NOT_ON_BRIDGE");

    let away = ctl
        .json(&[
            "user",
            "set-provider",
            "alice",
            "--provider",
            "third-party",
            "--provider-name",
            "Acme Audio",
        ])
        .await;
    assert_eq!(away["user"]["provider"], "THIRD_PARTY");
    assert_eq!(away["user"]["providerName"], "Acme Audio");
    assert_eq!(away["pin"], "", "no PIN away from the hosted bridge");
    ctl.run(&["user", "reset-pin", "alice"])
        .await
        .refused("FAILED_PRECONDITION", "USER_NOT_ON_HOSTED_BRIDGE");
    let back = ctl
        .json(&["user", "set-provider", "alice@example.com", "--provider", "hosted"])
        .await;
    assert_eq!(back["user"]["provider"], "HOSTED");
    assert!(is_pin(&back["pin"], 5), "{back}");

    let sent = ctl
        .json(&["user", "send-info", "alice", "--to", "assistant@example.com"])
        .await;
    let delivery_id = sent["deliveryId"].as_str().unwrap();
    assert!(!delivery_id.is_empty());
    let table = ctl
        .run(&["--output", "table", "user", "send-info", "alice@example.com"])
        .await;
    assert!(
        table.stdout.starts_with("conference information queued: delivery "),
        "{table:#?}"
    );

    let removed = ctl.json(&["user", "unlicense", "alice@example.com"]).await;
    assert_eq!(removed["licensed"], false);
    ctl.run(&["user", "unlicense", "alice"])
        .await
        .refused("FAILED_PRECONDITION", "USER_NOT_LICENSED");

    // An unknown user, by user_id or email, for every kind of command.
    for args in [
        &["user", "get", "nobody"][..],
        &["user", "get", "nobody@example.com"],
        &["user", "reset-pin", "nobody@example.com"],
        &["user", "reset-conference-id", "nobody"],
        &["user", "send-info", "nobody"],
        &["why", "nobody@example.com"],
    ] {
        let run = ctl.run(args).await;
        run.refused("NOT_FOUND", "USER_NOT_FOUND");
    }
    let missing = ctl.run(&["user", "get", "bob-the-builder"]).await;
    assert!(
        missing.stderr.starts_with("error: NOT_FOUND: ") && missing.stderr.contains("bob-the-builder"),
        "{missing:#?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_listed_with_filters_across_pages() {
    let (app, ctl) = start().await;
    add_toll_number(&ctl, "t").await;
    ctl.json(&["numbers", "add", "+14255550111", "--type", "toll", "--country", "US"])
        .await;
    let file = ctl.path("seven.csv");
    super::write_users(&file, "u", 7);
    let imported = ctl.run(&["licenses", "import", file.to_str().unwrap(), "--yes"]).await;
    assert_eq!(imported.json()["licensed"], 7);
    ctl.json(&["user", "unlicense", "u-5"]).await;
    ctl.json(&["user", "set-provider", "u-6", "--provider", "none"]).await;
    ctl.json(&["user", "set-numbers", "u-4", "--toll", "+14255550111"])
        .await;

    let ids = |listed: Value| -> Vec<String> {
        listed["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|user| user["userId"].as_str().unwrap().to_owned())
            .collect()
    };
    let all: Vec<String> = (0..7).map(|n| format!("u-{n}")).collect();
    assert_eq!(ids(ctl.json(&["user", "list"]).await), all);
    assert_eq!(
        ids(ctl.json(&["user", "list", "--page-size", "2"]).await),
        all,
        "every page"
    );
    assert_eq!(
        ids(ctl.json(&["user", "list", "--page-size", "2", "--limit", "3"]).await),
        all[..3]
    );
    assert_eq!(ids(ctl.json(&["user", "list", "--unlicensed"]).await), ["u-5"]);
    assert_eq!(ids(ctl.json(&["user", "list", "--licensed"]).await).len(), 6);
    assert_eq!(
        ids(ctl.json(&["user", "list", "--provider", "none"]).await),
        ["u-5", "u-6"],
        "unlicensed users are on no bridge"
    );
    assert_eq!(
        ids(ctl.json(&["user", "list", "--licensed", "--provider", "none"]).await),
        ["u-6"]
    );
    assert_eq!(
        ids(ctl
            .json(&[
                "user",
                "list",
                "--licensed",
                "--provider",
                "hosted",
                "--toll-number",
                "+14255550100"
            ])
            .await),
        ["u-0", "u-1", "u-2", "u-3"]
    );
    assert_eq!(
        ids(ctl.json(&["user", "list", "--email-prefix", "U-4@"]).await),
        ["u-4"]
    );
    ctl.run(&["user", "list", "--toll-number", "not-a-number"])
        .await
        .refused("INVALID_ARGUMENT", "INVALID_FIELD");

    let table = ctl.run(&["--output", "table", "user", "list", "--limit", "2"]).await;
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    assert!(
        lines[0].starts_with("USER_ID  EMAIL            DISPLAY_NAME  LICENSED  PROVIDER  CONFERENCE_ID  TOLL"),
        "{}",
        table.stdout
    );
    assert!(
        lines[1].starts_with("u-0      u-0@example.com  User 0        true      HOSTED    "),
        "{}",
        table.stdout
    );
    app.stop().await;
}
