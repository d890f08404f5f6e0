//! `restmq serve --config FILE` through the real binary: the file's settings apply, the
//! environment and the command line win over them, and an unknown key stops the server with
//! a message naming it (exit 2).

mod fault_util;

use fault_util::Proc;

/// Writes `text` as a config file in a fresh directory.
fn config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restmq.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path.display().to_string())
}

/// `POST /q/cfg` of a value of `bytes` bytes: the status.
async fn post(server: &Proc, bytes: usize) -> u16 {
    let http = reqwest::Client::new();
    let res = http.post(format!("{}/q/cfg", server.url)).form(&[("value", "x".repeat(bytes))]).send().await;
    res.unwrap().status().as_u16()
}

/// File < environment < command line, checked through the message size limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_environment_and_flags_in_order() {
    let (_dir, path) = config("store = \"memory\"\nmax-message-bytes = 100\nidle_timeout_secs = 5\n");
    let from_file = Proc::serve(&["--config", &path]);
    assert_eq!((post(&from_file, 90).await, post(&from_file, 150).await), (200, 413), "the file's 100");
    let from_env = Proc::serve_with_env(&["--config", &path], &[("RESTMQ_MAX_MESSAGE_BYTES", "200")]);
    assert_eq!((post(&from_env, 150).await, post(&from_env, 250).await), (200, 413), "the environment's 200");
    let from_flag = Proc::serve_with_env(
        &["--config", &path, "--max-message-bytes", "300"],
        &[("RESTMQ_MAX_MESSAGE_BYTES", "200")],
    );
    assert_eq!((post(&from_flag, 250).await, post(&from_flag, 350).await), (200, 413), "the flag's 300");
}

/// An unknown key stops the server before it starts, naming the key.
#[test]
fn unknown_key_is_named() {
    let (_dir, path) = config("store = \"memory\"\nmax_mesage_bytes = 100\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_restmq"))
        .args(["serve", "--config", &path, "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown settings: max_mesage_bytes"), "{stderr}");
}
