//! A loopback HTTP server that answers every request with one fixed AWS error: the failures
//! the bed's moto cannot produce on demand (an expired session, throttling, a denied action;
//! moto enforces IAM only for a whole server started with authentication on, and the bed's is
//! shared). The bodies are AWS's own wire formats: awsJson for ECR, awsQuery XML for STS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct AwsStub {
    pub url: String,
    requests: Arc<AtomicUsize>,
}

impl AwsStub {
    /// An ECR (awsJson 1.1) error: `__type` carries the code.
    pub fn json_error(status: u16, code: &str, message: &str) -> AwsStub {
        let body = serde_json::json!({ "__type": code, "message": message }).to_string();
        AwsStub::start(status, "application/x-amz-json-1.1", body)
    }

    /// An STS (awsQuery) error document.
    pub fn query_error(status: u16, code: &str, message: &str) -> AwsStub {
        let body = format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
             <Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"
        );
        AwsStub::start(status, "text/xml", body)
    }

    fn start(status: u16, content_type: &'static str, body: String) -> AwsStub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut request_body = vec![0u8; length];
                let _ = reader.read_exact(&mut request_body);
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Error\r\nContent-Type: {content_type}\r\n\
                     Content-Length: {}\r\nx-amzn-RequestId: c6104cbe\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        AwsStub { url, requests }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A loopback port nothing listens on: a metadata service that refuses at once.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().unwrap().port()
}
