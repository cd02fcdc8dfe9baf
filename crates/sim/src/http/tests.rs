//! Unit tests for the HTTP server (kept apart from `http.rs` only for file length).

use super::*;

fn echo_server() -> Server {
    Server::bind("127.0.0.1:0", |req: &Request| -> Reply {
        match req.path() {
            "/chunked" => Response::stream(
                200,
                "text/plain",
                None,
                Box::new(|w, _| {
                    w.write_all(b"hello ")?;
                    w.write_all(b"world")
                }),
            )
            .into(),
            _ => Response::new(
                200,
                "text/plain",
                format!("{} {} {}", req.method, req.target, req.body.len()),
            )
            .into(),
        }
    })
    .expect("bind")
}

/// Sends raw bytes, returns everything read until close or a 300 ms silence.
fn raw(server: &Server, req: &[u8]) -> String {
    let mut s = TcpStream::connect(server.local_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    s.write_all(req).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn malformed_requests_get_400_and_server_survives() {
    let server = echo_server();
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET nopath HTTP/1.1\r\n\r\n",
        b"GET / HTTP/9\r\n\r\n",
        b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        b"\xff\xfe / HTTP/1.1\r\n\r\n",
    ] {
        assert!(raw(&server, bad).starts_with("HTTP/1.1 400 "), "{bad:?}");
    }
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
    assert!(raw(&server, &huge).starts_with("HTTP/1.1 431 "));
    assert!(raw(&server, b"GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n").ends_with("GET /ok 0"));
}

#[test]
fn split_head_pipelining_body_and_chunked() {
    let server = echo_server();
    let mut s = TcpStream::connect(server.local_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    s.write_all(b"GET /a?x=1 HT").expect("write");
    thread::sleep(Duration::from_millis(20));
    s.write_all(b"TP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /chunked HTTP/1.1\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.contains("\r\n\r\nGET /a?x=1 0HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains("POST /b 3"), "{out}");
    assert!(
        out.ends_with(
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"
        ),
        "{out}"
    );
}

#[test]
fn head_keeps_length_and_drops_body() {
    let server = echo_server();
    let out = raw(&server, b"HEAD /x HTTP/1.1\r\n\r\nHEAD /chunked HTTP/1.0\r\n\r\n");
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\n\
         HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn shutdown_is_prompt_with_idle_and_held_connections() {
    let mut server = Server::bind("127.0.0.1:0", |_: &Request| Reply::Hold).expect("bind");
    let mut held = TcpStream::connect(server.local_addr()).expect("connect");
    held.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    let _idle = TcpStream::connect(server.local_addr()).expect("connect");
    thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    server.shutdown();
    assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
    held.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    assert!(matches!(held.read(&mut buf), Ok(0) | Err(_)));
}
