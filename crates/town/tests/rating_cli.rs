//! `bianmin-town supervisor add` and the configurable bad-review deadline (`feedback.toml`).

use std::process::Command;

use bianmin_town::feedback::{check_supervisor, Feedback};
use bianmin_town::store::FileAdmin;

#[test]
fn supervisor_add_prints_a_one_time_password_that_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_bianmin-town"))
            .arg("--data")
            .arg(dir.path())
            .args(["supervisor", "add", "--name", "县审批局张科长"])
            .output()
            .unwrap()
    };
    let o = run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let first = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(first.len(), 16);
    assert!(check_supervisor(&FileAdmin::new(dir.path()), "县审批局张科长", &first).unwrap());
    assert!(!check_supervisor(
        &FileAdmin::new(dir.path()),
        "县审批局张科长",
        "not-the-password"
    )
    .unwrap());
    assert!(!check_supervisor(&FileAdmin::new(dir.path()), "someone else", &first).unwrap());
    // Only a hash is stored.
    let file = std::fs::read_to_string(dir.path().join("supervisors.json")).unwrap();
    assert!(file.contains("$argon2id$") && !file.contains(&first));
    // Adding again resets the password: the old one stops working.
    let second = String::from_utf8(run().stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    assert!(!check_supervisor(&FileAdmin::new(dir.path()), "县审批局张科长", &first).unwrap());
    assert!(check_supervisor(&FileAdmin::new(dir.path()), "县审批局张科长", &second).unwrap());
}

#[test]
fn the_rectification_deadline_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Feedback::open(dir.path()).unwrap().rectify_days, 15);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("feedback.toml"),
        "rectify_working_days = 10\n",
    )
    .unwrap();
    let fb = Feedback::open(dir.path()).unwrap();
    assert_eq!(fb.rectify_days, 10);
    let cal = bianmin_engine::deadline::WorkCalendar::weekends_only();
    // Friday 2026-11-27 + 10 working days = Friday 2026-12-11.
    let fri = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    assert_eq!(
        fb.deadline(&cal, fri),
        chrono::NaiveDate::from_ymd_opt(2026, 12, 11).unwrap()
    );
}
