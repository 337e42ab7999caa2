//! Tokens: a bad or missing one, and a tenant's token acting on another
//! tenant, fail with the code and reason on stderr; the token itself never
//! shows anywhere.

use super::{OPERATOR, Run, TENANT_OTHER, TENANT_T, add_toll_number, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_other_tenants_are_refused_with_their_reason() {
    let (app, ctl) = start().await;
    add_toll_number(&ctl, "t").await;
    let mut runs: Vec<Run> = Vec::new();

    let bad = ctl.token("bad").run(&["tenant", "get"]).await;
    bad.refused("UNAUTHENTICATED", "TOKEN_UNKNOWN");
    runs.push(bad);
    let none = ctl.without("DIALIN_TOKEN_FILE").run(&["user", "list"]).await;
    none.refused("UNAUTHENTICATED", "TOKEN_MISSING");
    runs.push(none);

    let tenant = ctl.token("t");
    runs.push(
        tenant
            .run(&["user", "license", "kai", "--email", "kai@example.com", "--name", "Kai"])
            .await,
    );
    assert_eq!(runs.last().unwrap().code, 0, "a tenant token acts for its tenant");
    for args in [
        &["tenant", "get"][..],
        &["user", "get", "kai"],
        &["user", "reset-pin", "kai"],
        &["numbers", "add", "+14255550100", "--type", "toll"],
        &["deliveries", "list"],
    ] {
        let run = tenant.tenant("other").run(args).await;
        run.refused("PERMISSION_DENIED", "TENANT_NOT_ALLOWED");
        runs.push(run);
    }

    // An import whose calls are refused records why for every row, and fails.
    let file = ctl.path("users.csv");
    super::write_users(&file, "k", 3);
    let import = ctl
        .token("other")
        .run(&["licenses", "import", file.to_str().unwrap(), "--yes"])
        .await;
    assert_eq!(import.code, 1, "{import:#?}");
    assert!(import.stderr.contains("\nerror: PERMISSION_DENIED: "), "{import:#?}");
    assert!(import.stderr.contains("\nreason: TENANT_NOT_ALLOWED\n"), "{import:#?}");
    let summary: serde_json::Value = serde_json::from_str(&import.stdout).expect("the summary on stdout");
    assert_eq!(
        (summary["failed"].as_u64(), summary["licensed"].as_u64()),
        (Some(3), Some(0))
    );
    let lines = super::results_lines(&ctl.path("users.results.csv"));
    assert_eq!(lines.len(), 4);
    assert!(
        lines[1].starts_with("t,k-0,k-0@example.com,error,,PERMISSION_DENIED,TENANT_NOT_ALLOWED,"),
        "{lines:?}"
    );
    runs.push(import);

    for run in &runs {
        for token in [OPERATOR, TENANT_T, TENANT_OTHER, "a-token-nobody-issued"] {
            assert!(
                !run.stdout.contains(token) && !run.stderr.contains(token),
                "the token shows: {run:#?}"
            );
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_ca_it_speaks_tls_and_trusts_only_that_ca() {
    let app = dialin_tests::TestApp::builder()
        .tokens(&[(OPERATOR, "*")])
        .tls()
        .start()
        .await;
    let certs = app.certs.clone().expect("certificates");
    let ctl = super::Ctl::new(&app).env("DIALIN_CA", certs.ca.to_str().unwrap());
    let port = app.settings_addr().port();

    assert_eq!(
        ctl.json(&["tenant", "get"]).await["tenantId"],
        "t",
        "host:port with a CA is https"
    );
    let named = ctl.env("DIALIN_ADDR", &format!("https://localhost:{port}"));
    assert_eq!(named.json(&["tenant", "get"]).await["tenantId"], "t");

    // Neither reaches the service: said so, with where to look.
    let plaintext = ctl.without("DIALIN_CA").run(&["tenant", "get"]).await;
    let stranger = ctl
        .env("DIALIN_CA", certs.stranger_ca.to_str().unwrap())
        .run(&["tenant", "get"])
        .await;
    assert!(stranger.stderr.contains("UnknownIssuer"), "{stranger:#?}");
    for run in [plaintext, stranger] {
        assert_eq!(run.code, 1, "{run:#?}");
        assert!(run.stderr.starts_with("error: "), "{run:#?}");
        assert!(
            run.stderr.contains("\nhint: the call did not reach a dialin service"),
            "{run:#?}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_pins_lock_a_conference_id_out_and_the_tool_says_when_to_retry() {
    let (app, ctl) = super::start().await;
    super::add_toll_number(&ctl, "t").await;
    let licensed = ctl
        .json(&["user", "license", "lee", "--email", "lee@example.com", "--name", "Lee"])
        .await;
    let (pin, conference_id) = (
        licensed["pin"].as_str().expect("the new PIN").to_owned(),
        licensed["user"]["conferenceId"]
            .as_str()
            .expect("a conference ID")
            .to_owned(),
    );
    let verify = |pin: String| {
        let (ctl, conference_id) = (ctl.clone(), conference_id.clone());
        async move {
            ctl.run_with_stdin(&["pin", "verify", &conference_id], Some(&format!("{pin}\n")))
                .await
        }
    };
    let right = verify(pin.clone()).await;
    assert_eq!(right.json()["valid"], true);
    assert!(
        !right.stdout.contains(&pin) && !right.stderr.contains(&pin),
        "{right:#?}"
    );
    let wrong = if pin == "00000" { "11111" } else { "00000" };
    for _ in 0..5 {
        let refused = verify(wrong.to_owned()).await;
        assert_eq!(refused.json()["valid"], false);
    }
    let locked = verify(pin.clone()).await;
    locked.refused("RESOURCE_EXHAUSTED", "PIN_TRIES_EXHAUSTED");
    // Fifteen minutes, less the moments since the fifth wrong try.
    assert!(
        ["\nretry after: 15m\n", "\nretry after: 14m5"]
            .iter()
            .any(|wait| locked.stderr.contains(wait)),
        "{locked:#?}"
    );
    assert!(!locked.stderr.contains(&pin), "{locked:#?}");
    // No PIN on the command line: none given is a usage error.
    ctl.run_with_stdin(&["pin", "verify", &conference_id], Some(""))
        .await
        .usage_error("stdin");
    app.stop().await;
}
