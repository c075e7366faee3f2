//! A W3C WebDriver client for the web page's tests: Debian's chromium,
//! headless, driven through chromedriver over plain HTTP/1.1 on the
//! loopback. Just the commands the tests use.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A headless chromium, closed (with its driver) when dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    pub fn start() -> Browser {
        // A free port: bound, read, let go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (scripts/install-deps.sh test installs chromium-driver)");
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
        };
        let started = Instant::now();
        loop {
            match call_within(port, "GET", "/status", None, Duration::from_secs(2)) {
                Ok(v) if v["value"]["ready"] == true => break,
                answer => assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "chromedriver did not start: {answer:?}"
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            // Root in CI: chromium's sandbox needs an unprivileged user.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,850"]
        }}}});
        let v = browser.send("POST", "/session", Some(caps));
        browser.session = v["sessionId"].as_str().unwrap().to_owned();
        browser
    }

    /// A command of this session; its `value`.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = if self.session.is_empty() {
            path.to_owned()
        } else {
            format!("/session/{}{path}", self.session)
        };
        let v = call(self.port, method, &path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        assert!(
            v["value"]["error"].is_null(),
            "WebDriver {method} {path}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    pub fn go(&self, url: &str) {
        self.send("POST", "/url", Some(json!({ "url": url })));
    }

    /// The element `css` selects, waited for up to 10 s.
    fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let body = json!({"using": "css selector", "value": css});
            let path = format!("/session/{}/element", self.session);
            let v = call(self.port, "POST", &path, Some(body)).unwrap();
            if let Some(id) = v["value"].as_object().and_then(|o| o.values().next()) {
                if v["value"]["error"].is_null() {
                    return id.as_str().unwrap().to_owned();
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no element `{css}` on the page: {}",
                v["value"]
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.send("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Types `text` into the field `css` selects, after clearing it.
    pub fn fill(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.send("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.send(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Runs `script` (a function body) in the page; what it returns.
    pub fn eval(&self, script: &str) -> Value {
        self.send(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Runs `script` in the page until it returns something truthy (what
    /// it returned), for up to `within`; `None` if it never did.
    pub fn wait_for(&self, script: &str, within: Duration) -> Option<Value> {
        let started = Instant::now();
        while started.elapsed() < within {
            let v = self.eval(script);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Some(v);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// The window as a PNG, written to `path`.
    pub fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine as _;
        let v = self.send("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = call(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One HTTP/1.1 request to the driver; its JSON answer.
fn call(port: u16, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
    call_within(port, method, path, body, Duration::from_secs(60))
}

/// [`call`], waiting up to `wait` for the answer.
fn call_within(
    port: u16,
    method: &str,
    path: &str,
    body: Option<Value>,
    wait: Duration,
) -> Result<Value, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(wait)).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    // chromedriver keeps the connection open whatever the request says:
    // the answer ends where its Content-Length says.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("chromedriver closed the connection mid-answer".into());
        }
        answer.extend_from_slice(&chunk[..n]);
        let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or("an answer without Content-Length")?;
        if answer.len() >= end + 4 + length {
            let body = &answer[end + 4..end + 4 + length];
            return serde_json::from_slice(body)
                .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(body)));
        }
    }
}
