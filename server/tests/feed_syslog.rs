//! The `syslog` feed over real sockets: RFC 3164 over UDP, RFC 5424 over TCP (newline and
//! octet-counted framing), util-linux `logger`, per-host queues, and filters.

mod common;
mod feed_util;

use std::time::Duration;

use common::TestServer;
use feed_util::{free_port, take_json, wait_stats};
use restmq_server::config::StoreKind;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

/// A server with a syslog feed on a free port (UDP and TCP), plus `extra` options.
async fn syslog_server(extra: &str) -> (TestServer, u16) {
    let port = free_port();
    let spec = format!("syslog:udp=127.0.0.1:{port},tcp=127.0.0.1:{port}{extra}").parse().unwrap();
    let s = TestServer::start_with(StoreKind::Memory, |c| c.feeds = vec![spec]).await;
    // The server answers only once its feeds have started, so the listeners are bound now.
    s.get_json("/stats/").await;
    (s, port)
}

async fn send_udp(port: u16, datagram: &str) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(datagram.as_bytes(), ("127.0.0.1", port)).await.unwrap();
}

/// RestMQ's example line over UDP lands in `syslogd:<sender host>` with RestMQ's fields.
#[tokio::test]
async fn udp_rfc3164_goes_to_the_host_queue() {
    let (s, port) = syslog_server("").await;
    send_udp(
        port,
        "<22>Nov  1 00:12:04 gleicon-vm1 postfix/smtpd[4880]: connect from localhost[127.0.0.1]\n",
    )
    .await;
    let got = take_json(&s, "syslogd:gleicon-vm1", 1, 10).await;
    let m = &got[0];
    assert_eq!(
        m["line"],
        "<22>Nov  1 00:12:04 gleicon-vm1 postfix/smtpd[4880]: connect from localhost[127.0.0.1]"
    );
    assert_eq!(
        (m["host"].as_str(), m["facility"].as_str(), m["severity"].as_str()),
        (Some("gleicon-vm1"), Some("mail"), Some("info"))
    );
    assert_eq!((m["app"].as_str(), m["pid"].as_str()), (Some("postfix/smtpd"), Some("4880")));
    assert_eq!(m["msg"], "connect from localhost[127.0.0.1]");
    assert!(m["tstamp"].as_f64().unwrap() > 1.6e9, "tstamp is the receipt time: {m}");
    let queues: Vec<String> = serde_json::from_value(s.get_json("/q/").await).unwrap();
    assert!(queues.contains(&"syslogd:gleicon-vm1".to_owned()), "{queues:?}");
}

/// TCP: newline-framed and octet-counted RFC 5424 messages on one connection arrive in order;
/// a message without a host name goes to the sender's address.
#[tokio::test]
async fn tcp_framings_and_rfc5424() {
    let (s, port) = syslog_server("").await;
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let counted = "<34>1 2024-05-01T10:00:00Z web-2 sshd 77 - - second, counted";
    let frames = format!(
        "<13>1 2024-05-01T10:00:00Z web-2 app 1 ID [a@1 k=\"v\"] first\n{} {counted}<13>1 - - - - - - nameless\n",
        counted.len()
    );
    tcp.write_all(frames.as_bytes()).await.unwrap();
    tcp.flush().await.unwrap();
    let got = take_json(&s, "syslogd:web-2", 2, 10).await;
    assert_eq!((got[0]["msg"].as_str(), got[0]["app"].as_str()), (Some("first"), Some("app")));
    assert_eq!(
        (got[1]["msg"].as_str(), got[1]["severity"].as_str()),
        (Some("second, counted"), Some("crit"))
    );
    assert_eq!(got[1]["facility"], "auth");
    let nameless = take_json(&s, "syslogd:127.0.0.1", 1, 10).await;
    assert_eq!(
        (nameless[0]["host"].as_str(), nameless[0]["msg"].as_str()),
        (Some("127.0.0.1"), Some("nameless"))
    );
}

/// `logger -n 127.0.0.1 -P <port> --udp hello` appears in `syslogd:<this host>`. Where
/// util-linux `logger` is missing, the same RFC 5424 datagram is sent by hand.
#[tokio::test]
async fn logger_reaches_the_host_queue() {
    let (s, port) = syslog_server("").await;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned();
    let ran = std::process::Command::new("logger")
        .args(["-n", "127.0.0.1", "-P", &port.to_string(), "--udp", "hello"])
        .status()
        .is_ok_and(|status| status.success());
    if !ran {
        send_udp(port, &format!("<13>1 2024-05-01T10:00:00Z {hostname} tester - - - hello")).await;
    }
    // logger may write the short or the full host name: find the queue it chose.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let queue = loop {
        let queues: Vec<String> = serde_json::from_value(s.get_json("/q/").await).unwrap();
        if let Some(q) = queues.into_iter().find(|q| q.starts_with("syslogd:")) {
            break q;
        }
        assert!(tokio::time::Instant::now() < deadline, "no syslogd:<host> queue");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let host = queue.strip_prefix("syslogd:").unwrap();
    assert!(host.starts_with(hostname.split('.').next().unwrap()), "{host} vs {hostname}");
    let m = &take_json(&s, &queue, 1, 5).await[0];
    assert_eq!((m["msg"].as_str(), m["host"].as_str()), (Some("hello"), Some(host)));
    assert_eq!(m["severity"], "notice");
}

/// A filter keeps only errors; the rest is counted as filtered, not published.
#[tokio::test]
async fn filter_by_severity() {
    let (s, port) = syslog_server(",filter=severity~^(err|crit)$,map=msg,severity").await;
    for (pri, text) in [(14, "info one"), (11, "err one"), (13, "notice"), (10, "crit one")] {
        send_udp(port, &format!("<{pri}>May  1 10:00:00 box app: {text}")).await;
    }
    let got = take_json(&s, "syslogd:box", 2, 10).await;
    let msgs: Vec<&Value> = got.iter().map(|m| &m["msg"]).collect();
    assert_eq!(msgs, ["err one", "crit one"]);
    assert_eq!(got[0], serde_json::json!({"msg": "err one", "severity": "err"}));
    wait_stats(&s, "syslog:syslogd", 5, |f| f["filtered"] == 2 && f["published"] == 2).await;
}

/// A busy port makes `serve` fail at startup with a message naming the listener.
#[tokio::test]
async fn busy_port_fails_startup() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut config = restmq_server::config::ServeConfig::defaults();
    config.store = StoreKind::Memory;
    config.feeds = vec![format!("syslog:udp=127.0.0.1:{port}").parse().unwrap()];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let run = restmq_server::run(config, listener, token.clone());
    let err = tokio::time::timeout(Duration::from_secs(10), run).await.unwrap().unwrap_err();
    assert!(format!("{err:#}").contains(&format!("udp 127.0.0.1:{port}")), "{err:#}");
}
