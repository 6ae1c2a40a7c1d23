//! A webhook or ping server for the alert tests: a `tiny_http` server on 127.0.0.1 that
//! records every request it gets and answers each with one status, or never.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The secret part of the webhook URL, as Slack's are built.
pub const TOKEN: &str = "XoXoT0kenInPath7f3e";
/// The path of [`Hook::url`].
pub const PATH: &str = "/services/T0AB12CD/B0EF34GH/XoXoT0kenInPath7f3e";

#[derive(Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Reads the request and never answers.
    Hang,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub body: String,
}

/// A webhook or ping server on 127.0.0.1 that records every request it gets.
pub struct Hook {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Hook {
    pub fn start(answer: Answer) -> Hook {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for mut request in server.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let content_type = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("content-type"))
                    .map(|h| h.value.to_string())
                    .unwrap_or_default();
                log.lock().unwrap().push(Received {
                    path: request.url().to_string(),
                    content_type,
                    body,
                });
                match answer {
                    Answer::Status(code) => {
                        let _ = request.respond(tiny_http::Response::empty(code));
                    }
                    // Held open on its own thread, so the next request is still read.
                    Answer::Hang => {
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_secs(120));
                            drop(request);
                        });
                    }
                }
            }
        });
        Hook { base, received }
    }

    /// The webhook URL, with a Slack-like token in its path.
    pub fn url(&self) -> String {
        format!("{}{PATH}", self.base)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn paths(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.path).collect()
    }
}
