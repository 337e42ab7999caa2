//! `deliveries list | get | retry`, `why` and `preview`: the emails as the
//! notifier recorded them, through the settings service.

use dialin_tests::{DEADLINE, TestApp, wait_until};
use serde_json::Value;

use super::{Ctl, OPERATOR, TENANT_OTHER, TENANT_T, add_toll_number, start};

/// Waits until `dialinctl deliveries list ARGS` shows `count` emails, none pending.
async fn settled(ctl: &Ctl, args: &[&str], count: usize) -> Vec<Value> {
    let mut list = vec!["deliveries", "list"];
    list.extend_from_slice(args);
    wait_until(
        &format!("{count} settled deliveries for {args:?}"),
        DEADLINE,
        || async {
            let listed = ctl.json(&list).await;
            let deliveries = listed["deliveries"].as_array().cloned().unwrap_or_default();
            let settled = deliveries.iter().all(|delivery| delivery["status"] != "PENDING");
            (deliveries.len() == count && settled).then_some(deliveries)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_shows_an_email_suppressed_because_the_switch_is_off() {
    let (app, ctl) = start().await;
    add_toll_number(&ctl, "t").await;
    ctl.json(&[
        "user",
        "license",
        "alice",
        "--email",
        "alice@example.com",
        "--name",
        "Alice",
    ])
    .await;
    let welcome = settled(&ctl, &["alice@example.com"], 1).await;
    assert_eq!(
        (welcome[0]["kind"].as_str(), welcome[0]["status"].as_str()),
        (Some("WELCOME"), Some("SENT"))
    );

    let off = ctl
        .json(&["tenant", "set", "--automatically-send-emails-to-users=false"])
        .await;
    assert_eq!(off["version"], "1");
    ctl.json(&["user", "reset-pin", "alice@example.com"]).await;
    let both = settled(&ctl, &["alice"], 2).await;
    assert_eq!(both[0]["kind"], "PIN_RESET");
    assert_eq!(both[0]["status"], "SUPPRESSED");
    let reason = both[0]["reason"].as_str().unwrap().to_owned();
    assert!(!reason.is_empty());

    let why = ctl.json(&["why", "alice@example.com"]).await;
    assert_eq!(why["tenant"]["automaticallySendEmailsToUsers"], false);
    assert_eq!(why["tenant"]["version"], "1");
    assert_eq!(why["user"]["userId"], "alice");
    assert_eq!(why["user"]["email"], "alice@example.com");
    let deliveries = why["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(
        (
            deliveries[0]["kind"].as_str(),
            deliveries[0]["status"].as_str(),
            deliveries[0]["reason"].as_str()
        ),
        (Some("PIN_RESET"), Some("SUPPRESSED"), Some(reason.as_str()))
    );
    assert_eq!(deliveries[0]["trigger"], "AUTOMATIC");
    assert!(deliveries[0]["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(deliveries[0].get("sentAt").is_none());
    assert_eq!(
        (deliveries[1]["kind"].as_str(), deliveries[1]["status"].as_str()),
        (Some("WELCOME"), Some("SENT"))
    );
    assert!(deliveries[1]["sentAt"].is_string());

    let told = ctl.run(&["--output", "table", "why", "alice"]).await;
    assert_eq!(told.code, 0, "{told:#?}");
    let lines: Vec<&str> = told.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "Automatic emails: OFF as of settings version 1 — automatic emails are suppressed; \
         an admin can still send-info (`dialinctl user send-info alice`)"
    );
    assert!(lines[1].starts_with("User alice <alice@example.com>: licensed, on the hosted bridge, conference ID "));
    assert_eq!(
        lines[2],
        format!("Latest email: PIN_RESET (AUTOMATIC), SUPPRESSED: {reason}")
    );
    assert_eq!(lines[4], "Emails, newest first:");
    assert!(lines[5].starts_with("DELIVERY_ID"), "{}", told.stdout);
    assert!(
        lines[6].contains("PIN_RESET") && lines[6].contains("SUPPRESSED"),
        "{}",
        told.stdout
    );

    // An admin's manual send is not gated by the switch.
    let info = ctl.json(&["user", "send-info", "alice@example.com"]).await;
    let info_id = info["deliveryId"].as_str().unwrap().to_owned();
    let sent = settled(&ctl, &["alice", "--status", "sent"], 2).await;
    assert_eq!(
        (sent[0]["kind"].as_str(), sent[0]["deliveryId"].as_str()),
        (Some("CONFERENCE_INFO"), Some(info_id.as_str()))
    );
    assert_eq!(sent[1]["kind"], "WELCOME");
    let suppressed = ctl.json(&["deliveries", "list", "--status", "suppressed"]).await;
    assert_eq!(suppressed["deliveries"].as_array().unwrap().len(), 1);
    let newest = ctl.json(&["deliveries", "list", "--limit", "1"]).await;
    assert_eq!(newest["deliveries"][0]["deliveryId"], info_id.as_str());
    let table = ctl.run(&["--output", "table", "deliveries", "list"]).await;
    assert_eq!(
        table.stdout.lines().count(),
        4,
        "a heading and three emails: {}",
        table.stdout
    );

    let got = ctl.json(&["deliveries", "get", &info_id]).await;
    assert_eq!(
        (got["deliveryId"].as_str(), got["status"].as_str()),
        (Some(info_id.as_str()), Some("SENT"))
    );
    assert_eq!(got["trigger"], "MANUAL");
    ctl.run(&["deliveries", "retry", &info_id])
        .await
        .refused("FAILED_PRECONDITION", "DELIVERY_NOT_FAILED");
    ctl.run(&["deliveries", "get", "no-such-delivery"])
        .await
        .refused("NOT_FOUND", "DELIVERY_NOT_FOUND");
    // Another tenant's operator sees none of t's emails.
    let other = ctl.token("other").tenant("other");
    other
        .run(&["deliveries", "get", &info_id])
        .await
        .refused("NOT_FOUND", "DELIVERY_NOT_FOUND");
    // Alice is t's: in "other" there is no such user, by id or by email.
    for alice in ["alice", "alice@example.com"] {
        other
            .run(&["deliveries", "list", alice])
            .await
            .refused("NOT_FOUND", "USER_NOT_FOUND");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_email_is_retried_and_one_without_its_pin_is_refused() {
    let app = TestApp::builder()
        .tokens(&[(OPERATOR, "*"), (TENANT_T, "tenant:t"), (TENANT_OTHER, "tenant:other")])
        .smtp_reply("550 5.7.1 relaying denied")
        .start()
        .await;
    let ctl = Ctl::new(&app);
    add_toll_number(&ctl, "t").await;
    ctl.json(&["user", "license", "ivy", "--email", "ivy@example.com", "--name", "Ivy"])
        .await;
    let info = ctl.json(&["user", "send-info", "ivy"]).await;
    let info_id = info["deliveryId"].as_str().unwrap().to_owned();
    let failed = settled(&ctl, &["ivy", "--status", "failed"], 2).await;
    let welcome = failed.iter().find(|delivery| delivery["kind"] == "WELCOME").unwrap();
    assert!(
        welcome["reason"].as_str().unwrap().contains("relaying denied"),
        "{welcome}"
    );

    let why = ctl.run(&["--output", "table", "why", "ivy"]).await;
    let latest = why.stdout.lines().nth(2).unwrap_or_default();
    assert!(
        latest.starts_with("Latest email: CONFERENCE_INFO (MANUAL), FAILED after ")
            && latest.ends_with(&format!("`dialinctl deliveries retry {info_id}` sends it again")),
        "{}",
        why.stdout
    );

    ctl.run(&["deliveries", "retry", welcome["deliveryId"].as_str().unwrap()])
        .await
        .refused("FAILED_PRECONDITION", "DELIVERY_CONTENT_ERASED");
    let retried = ctl.json(&["deliveries", "retry", &info_id]).await;
    assert_eq!(retried["deliveryId"], info_id.as_str());
    assert_eq!(retried["status"], "PENDING");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_shows_each_kind_of_email_with_sample_values() {
    let (app, ctl) = start().await;
    for kind in [
        "welcome",
        "pin-reset",
        "settings-changed",
        "disabled",
        "conference-info",
    ] {
        let preview = ctl.json(&["preview", "--kind", kind]).await;
        for field in ["subject", "text", "html"] {
            assert!(
                !preview[field].as_str().unwrap_or_default().is_empty(),
                "{kind}: {preview}"
            );
        }
        assert_eq!(preview["language"], "en");
    }
    let french = ctl.json(&["preview", "--kind", "pin-reset", "--locale", "fr-FR"]).await;
    assert_eq!(french["language"], "fr");
    let shown = ctl
        .run(&["--output", "table", "preview", "--kind", "welcome", "--locale", "fr-FR"])
        .await;
    assert_eq!(shown.code, 0, "{shown:#?}");
    assert!(shown.stdout.starts_with("Subject: "), "{}", shown.stdout);
    assert!(shown.stdout.contains("\nLanguage: fr\n\n"), "{}", shown.stdout);
    assert!(!shown.stdout.contains("<html"), "the text part, not the HTML");
    ctl.token("t")
        .tenant("other")
        .run(&["preview", "--kind", "welcome"])
        .await
        .refused("PERMISSION_DENIED", "TENANT_NOT_ALLOWED");
    app.stop().await;
}
