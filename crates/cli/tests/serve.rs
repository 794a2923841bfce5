//! `convnet serve` as a process: it prints its URL once bound, and SIGTERM lets the request in
//! flight finish (an enrolment here), exits 0 and leaves every enrolment in the gallery.
//! The API itself is tested in crates/server/tests/api.rs.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{face_api, s};
use convnet_face::gallery::Gallery;

const TOKEN: &str = "t0ken-for-tests";
/// Every wait's bound.
const TIMEOUT: Duration = Duration::from_secs(120);

/// One HTTP/1.1 exchange on a connection of its own: the status and the body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the server accepts connections");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn enrol(addr: &str, name: &str, picture: &[u8]) -> (u16, String) {
    let auth = format!("Bearer {TOKEN}");
    http(
        addr,
        "POST",
        &format!("/v1/gallery/people/{name}"),
        &[("Content-Type", "image/jpeg"), ("Authorization", &auth)],
        picture,
    )
}

/// The `host:port` the server printed in `convnet serving on http://HOST:PORT/`.
fn served_address(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let line = rx
        .recv_timeout(TIMEOUT)
        .expect("the server prints its URL once its models are loaded");
    line.strip_prefix("convnet serving on http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string()
}

fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_keeps_every_enrolment() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = dir.path().join("faces.sqlite");
    let mut child = Command::new(env!("CARGO_BIN_EXE_convnet"))
        .args(["serve", "--port", "0", "--faces", "--workers", "1"])
        .args([
            "--models",
            &s(&face_api("model")),
            "--gallery",
            &s(&gallery),
        ])
        .env("CONVNET_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the convnet binary runs");
    let addr = served_address(&mut child);
    assert!(
        addr.starts_with("127.0.0.1:"),
        "loopback by default: {addr}"
    );
    let photo = std::fs::read(face_api("demo/sample1.jpg")).unwrap();

    let (status, body) = enrol(&addr, "ada", &photo);
    assert_eq!(status, 201, "{body}");

    // A second enrolment, caught while it runs.
    let in_flight = {
        let (addr, photo) = (addr.clone(), photo.clone());
        std::thread::spawn(move || enrol(&addr, "bob", &photo))
    };
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (_, metrics) = http(&addr, "GET", "/metrics", &[], b"");
        if metrics.contains("\nconvnet_in_flight 1\n") {
            break;
        }
        assert!(
            !in_flight.is_finished(),
            "the enrolment ended before it was seen running"
        );
        assert!(Instant::now() < deadline, "the enrolment never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 201, "the request in flight completes: {body}");
    assert!(body.contains("\"bob\""), "{body}");
    let exit = wait_for_exit(&mut child);
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    assert!(
        TcpStream::connect(&addr).is_err(),
        "nothing listens any more"
    );

    let people: Vec<String> = Gallery::open(&gallery)
        .unwrap()
        .people()
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(people, ["ada", "bob"]);
}
