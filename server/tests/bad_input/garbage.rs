//! Garbage: non-UTF-8 and random bytes anywhere in a request never panic or answer 5xx.

use super::*;

/// Non-UTF-8 and garbage bodies, content types and paths get 4xx answers, never a panic or 5xx.
async fn garbage_does_not_panic(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let urlencoded = "application/x-www-form-urlencoded";
    let bad_multipart = "multipart/form-data; boundary=XYZ";
    let cases = [
        (
            s.http.post(s.url("/queue")).header("content-type", urlencoded).body(b"body=%FF%FE%00".to_vec()),
            400,
            "invalid_argument",
        ),
        (
            s.http
                .post(s.url("/queue"))
                .header("content-type", "text/plain")
                .body(vec![0xc3, 0x28, 0xa0, 0xa1]),
            400,
            "malformed_json",
        ),
        (
            s.http.post(s.url("/q/seed")).header("content-type", bad_multipart).body("garbage"),
            400,
            "invalid_argument",
        ),
        (
            s.http.post(s.url("/q/seed")).header("content-type", "multipart/form-data").body("garbage"),
            400,
            "invalid_argument",
        ),
        (
            s.http.post(s.url("/q/seed")).header("content-type", "garbage/;;;=").body(vec![0xff; 64]),
            400,
            "missing_argument",
        ),
        (
            s.http.post(s.url("/q/seed")).header("content-type", &[0xff_u8, 0xfe][..]).body("value=x"),
            400,
            "missing_argument",
        ),
        (
            s.http
                .post(s.url("/q/seed"))
                .header("content-type", urlencoded)
                .body(vec![0xff, b'&', b'=', 0xfe]),
            400,
            "invalid_argument",
        ),
    ];
    for (n, (req, status, code)) in cases.into_iter().enumerate() {
        expect_error(req, status, code, &format!("garbage case {n}")).await;
    }
    assert_eq!(snapshot(&s).await, before);

    let status = s.get("/q/%FF%FE").await.0;
    assert_eq!(status, 400, "non-UTF-8 queue name in the path");
    assert_eq!(s.get_json("/j/seed").await["len"], 2, "the server still answers");
}

/// A form value or name that is not UTF-8 (urlencoded body, query string or multipart) is
/// 400 `invalid_argument`, not stored with U+FFFD, and nothing is added.
async fn invalid_utf8_form_values_are_refused(store: StoreKind) {
    let s = seeded(store).await;
    let before = snapshot(&s).await;
    let urlencoded = "application/x-www-form-urlencoded";
    let cases = [
        (
            "urlencoded value",
            s.http.post(s.url("/q/seed")).header("content-type", urlencoded).body("value=%FF%FE"),
        ),
        (
            "raw byte value",
            s.http.post(s.url("/q/seed")).header("content-type", urlencoded).body(b"value=\xff".to_vec()),
        ),
        (
            "urlencoded name",
            s.http.post(s.url("/q/seed")).header("content-type", urlencoded).body("%FF=x&value=ok"),
        ),
        ("query value", s.http.post(s.url("/q/seed?value=%FF%FE"))),
        ("query on /", s.http.post(s.url("/?queue=seed&value=%C3%28"))),
        (
            "multipart value",
            s.http.post(s.url("/q/seed")).multipart(
                reqwest::multipart::Form::new()
                    .part("value", reqwest::multipart::Part::bytes(vec![0xff, 0xfe])),
            ),
        ),
    ];
    for (what, req) in cases {
        expect_error(req, 400, "invalid_argument", what).await;
    }
    assert_eq!(snapshot(&s).await, before);
}

/// A deterministic xorshift64* generator, so the garbage loop is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Random bytes, percent-encoded (some left as plain letters) for a URL.
    fn url_text(&mut self, max: usize) -> String {
        self.bytes(max)
            .into_iter()
            .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
            .collect()
    }

    /// A word the server knows, or random bytes.
    fn arg(&mut self, known: &[&str], max: usize) -> String {
        if self.below(2) == 0 {
            self.pick(known).to_owned()
        } else {
            self.url_text(max)
        }
    }
}

/// Hundreds of random requests (random bytes in paths, query strings and bodies, random
/// content types) all get answers below 500, errors as JSON, and the server keeps working.
async fn random_garbage_requests(store: StoreKind) {
    let s = seeded(store).await;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let routes = [
        "/",
        "/q/",
        "/q",
        "/q/{}",
        "/j/{}",
        "/p/{}",
        "/control/{}",
        "/control/",
        "/stats/",
        "/stats/{}",
        "/queue",
        "/ws/{}",
        "/nope/{}",
    ];
    let names = ["seed", "fz", "a:b", "", "x y", "..", "%2F"];
    let keys = ["value", "msg", "queue", "soft", "ttl", "callback", "policy", "status", "body", "cmd", "key"];
    let words = [
        "1",
        "0",
        "cb",
        "alert(1)",
        "broadcast",
        "roundrobin",
        "start",
        "stop",
        "seed",
        "fz",
        "x%20y",
        "%FF",
    ];
    let methods = [Method::GET, Method::POST, Method::DELETE, Method::PUT, Method::PATCH];
    let content_types = [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=b",
        "multipart/form-data",
        "application/json",
        "text/plain",
        "garbage/;;;=",
        "",
    ];
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..400 {
        let route = rng.pick(&routes);
        let segment = rng.arg(&names, 24);
        let mut path = route.replace("{}", &segment);
        let pairs = rng.below(5);
        for p in 0..pairs {
            path.push(if p == 0 { '?' } else { '&' });
            path.push_str(&rng.arg(&keys, 8));
            path.push('=');
            path.push_str(&rng.arg(&words, 40));
        }
        let method = methods[rng.below(methods.len())].clone();
        let mut req = s.http.request(method.clone(), s.url(&path));
        if method != Method::GET || rng.below(4) == 0 {
            let content_type = rng.pick(&content_types);
            if !content_type.is_empty() {
                req = req.header("content-type", content_type);
            }
            let body = match rng.below(3) {
                0 => rng.bytes(2000),
                1 => format!(
                    "{}={}&{}={}",
                    rng.pick(&keys),
                    rng.url_text(60),
                    rng.pick(&keys),
                    rng.pick(&words)
                )
                .into_bytes(),
                _ => {
                    let cmd = rng.pick(&["add", "get", "take", "del", "nope"]);
                    let queue = rng.pick(&names);
                    let value = String::from_utf8_lossy(&rng.bytes(30)).into_owned();
                    json!({"cmd": cmd, "queue": queue, "value": value, "key": format!("{queue}:{}", rng.below(5))})
                        .to_string()
                        .into_bytes()
                }
            };
            req = req.body(body);
        }
        let what = format!("request {i}: {method} {path}");
        let res = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("?").to_owned())
            .unwrap_or_default();
        let body = res.bytes().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(status < 500, "{what}: {status} {}", String::from_utf8_lossy(&body));
        seen.insert(status);
        if status >= 400 {
            assert_eq!(content_type, "application/json", "{what}: {status}");
            let doc: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(doc["error"]["code"].is_string(), "{what}: {doc}");
        }
    }
    for status in [200, 400, 404, 405, 426] {
        assert!(seen.contains(&status), "the loop reached a {status} answer: {seen:?}");
    }
    let fresh = format!("after{}", rng.below(1000));
    assert_eq!(s.add(&fresh, "still alive").await, format!("{fresh}:1"));
    assert_eq!(s.get(&format!("/q/{fresh}")).await.0, 200);
    assert!(s.get_json("/stats/").await["store"].is_string());
}

crate::on_every_store!(garbage_does_not_panic, random_garbage_requests, invalid_utf8_form_values_are_refused,);
