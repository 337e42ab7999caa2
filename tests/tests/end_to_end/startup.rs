//! Bad configuration fails start-up with a message that says what to fix.

use dialin_notifier::{config::Config as NotifierConfig, startup::Application as Notifier};
use dialin_settings::{config::Config as SettingsConfig, startup::Application as Settings};

async fn notifier_error(args: &[&str]) -> String {
    let dir = std::env::temp_dir().join(format!("dialin-config-{}", uuid::Uuid::new_v4().simple()));
    let database = format!("sqlite://{}/n.db?mode=rwc", dir.display());
    let mail_dir = dir.join("mail").display().to_string();
    let mut all = vec!["--listen", "127.0.0.1:0", "--mail-dir", &mail_dir];
    if !args.contains(&"--database-url") {
        all.extend(["--database-url", &database]);
    }
    all.extend_from_slice(args);
    let config = NotifierConfig::from_args(all).expect("flags parse");
    let error = match Notifier::build(config).await {
        Ok(_) => panic!("{args:?} should not start"),
        Err(error) => error.to_string(),
    };
    let _ = std::fs::remove_dir_all(dir);
    error
}

#[tokio::test]
async fn the_notifier_refuses_bad_configuration() {
    assert!(
        notifier_error(&["--smtp-url", "http://mail.example.com"])
            .await
            .contains("smtp://")
    );
    assert!(
        notifier_error(&["--smtp-url", "smtp://u:p@mail.example.com?tls=none"])
            .await
            .contains("in clear")
    );
    assert!(
        notifier_error(&["--mail-from", "not a mailbox"])
            .await
            .contains("DIALIN_MAIL_FROM")
    );
    assert!(
        notifier_error(&["--database-url", "mysql://root:secret@db/x"])
            .await
            .contains("sqlite:// or postgres://")
    );
    let unreachable = notifier_error(&["--database-url", "postgres://nobody@127.0.0.1:1/x"]).await;
    assert!(unreachable.contains("cannot connect"), "{unreachable}");
    assert!(!unreachable.contains("secret"));
}

async fn settings_error(args: Vec<&str>) -> String {
    let config = SettingsConfig::from_args(args).expect("flags parse");
    match Settings::build(config).await {
        Ok(_) => panic!("should not start"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn the_settings_service_refuses_bad_configuration() {
    let dir = std::env::temp_dir().join(format!("dialin-config-{}", uuid::Uuid::new_v4().simple()));
    let database = format!("sqlite://{}/s.db?mode=rwc", dir.display());
    let bad_url = settings_error(vec![
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &database,
        "--notifier-url",
        "not a url",
    ])
    .await;
    assert!(bad_url.contains("DIALIN_NOTIFIER_URL"), "{bad_url}");
    let key = dir.join("bad.key");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&key, "too short").unwrap();
    let key_arg = key.display().to_string();
    let bad_key = settings_error(vec![
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &database,
        "--pin-key-file",
        &key_arg,
    ])
    .await;
    assert!(bad_key.contains("64 hex digits"), "{bad_key}");
    assert!(
        SettingsConfig::from_args(["--drain-timeout", "10"]).is_err(),
        "a duration needs a unit"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn migrate_runs_twice_and_a_schema_out_of_step_is_refused() {
    use sea_orm::{ConnectionTrait, Database};

    let dir = std::env::temp_dir().join(format!("dialin-schema-{}", uuid::Uuid::new_v4().simple()));
    let database = format!("sqlite://{}/n.db?mode=rwc", dir.display());
    let mail_dir = dir.join("mail").display().to_string();
    let config = |migrate_on_start: &'static str| {
        NotifierConfig::from_args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database,
            "--mail-dir",
            &mail_dir,
            "--migrate-on-start",
            migrate_on_start,
        ])
        .expect("flags parse")
    };
    let behind = match Notifier::build(config("false")).await {
        Ok(_) => panic!("an empty database is behind"),
        Err(error) => error.to_string(),
    };
    assert!(behind.contains("dialin-notifier migrate"), "{behind}");
    for _ in 0..2 {
        dialin_notifier::startup::migrate(&config("false"))
            .await
            .expect("migrate, twice");
    }
    Notifier::build(config("false")).await.expect("a current schema starts");

    let db = Database::connect(database.clone()).await.unwrap();
    db.execute_unprepared("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m9999_from_the_future', 0)")
        .await
        .unwrap();
    let ahead = match Notifier::build(config("true")).await {
        Ok(_) => panic!("a schema ahead of the binary is refused"),
        Err(error) => error.to_string(),
    };
    assert!(ahead.contains("ahead of this binary"), "{ahead}");
    let _ = std::fs::remove_dir_all(dir);
}
