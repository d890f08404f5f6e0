//! The shipped systemd unit passes `systemd-analyze verify`, with its `ExecStart` pointed at
//! the binary under test. Where systemd is not installed the check is skipped with a message
//! (the acceptance allows it; nginx's test never skips).

/// `contrib/restmq.service` verifies cleanly.
#[test]
fn shipped_unit_verifies() {
    let Ok(which) = std::process::Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze is not installed here; contrib/restmq.service was not verified");
        return;
    };
    assert!(which.status.success());
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../contrib/restmq.service")).unwrap();
    let unit = unit.replace("/usr/local/bin/restmq", env!("CARGO_BIN_EXE_restmq"));
    assert!(unit.contains(env!("CARGO_BIN_EXE_restmq")), "the shipped unit changed shape");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restmq.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed: {said}");
    assert!(said.trim().is_empty(), "systemd-analyze verify complained: {said}");
}
