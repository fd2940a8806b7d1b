//! The floor of a webhook design: the same MyApp transform natively, behind
//! an HTTP/1.1 server on loopback, called with a keep-alive client.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request as HttpRequest, Response as HttpResponse};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sous::render::Observed;
use sous_guest::bindings::sous::reconciler::types as wit;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::Answer;

/// The webhook's request body. Objects stay raw text until the transform
/// parses them, exactly as in the other two paths.
#[derive(Deserialize)]
struct WebhookBody<'a> {
    #[serde(borrow)]
    parent: &'a RawValue,
    #[serde(borrow)]
    children: Vec<&'a RawValue>,
    #[serde(borrow)]
    related: Vec<&'a RawValue>,
}

/// The webhook's answer, as the client reads it.
#[derive(Deserialize)]
struct WebhookAnswer {
    children: Vec<Value>,
    status: Option<Value>,
}

async fn webhook(
    request: HttpRequest<Incoming>,
) -> Result<HttpResponse<Full<Bytes>>, hyper::Error> {
    let body = request.into_body().collect().await?.to_bytes();
    let body: WebhookBody = serde_json::from_slice(&body).expect("webhook body");
    let raw = wit::Request {
        reconciler: "my-app".into(),
        parent: body.parent.get().to_string(),
        children: body.children.iter().map(|c| c.get().to_string()).collect(),
        related: body.related.iter().map(|r| r.get().to_string()).collect(),
        config: None,
        desired: None,
    };
    let response = sous_guest::run_reconcile::<my_app::MyApp>(raw).expect("my-app reconciles");
    // The transform's objects are JSON text already: splice them in.
    let answer = format!(
        r#"{{"children":[{}],"status":{}}}"#,
        response.children.join(","),
        response.status.as_deref().unwrap_or("null")
    );
    let mut answer = HttpResponse::new(Full::new(Bytes::from(answer)));
    answer.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(answer)
}

/// A keep-alive HTTP/1.1 connection to the webhook, served on loopback from
/// a thread of its own.
pub struct WebhookClient {
    runtime: tokio::runtime::Runtime,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl WebhookClient {
    pub fn start(server: Server) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback listener");
        let address = listener.local_addr().expect("listener address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let runtime = single_thread_runtime();
        match server {
            Server::OwnThread => {
                std::thread::spawn(move || single_thread_runtime().block_on(serve(listener)));
            }
            Server::ClientThread => {
                runtime.spawn(serve(listener));
            }
        }
        let sender = runtime.block_on(async {
            let stream = TcpStream::connect(address)
                .await
                .expect("connect to the webhook");
            stream.set_nodelay(true).expect("nodelay");
            let (sender, connection) = hyper::client::conn::http1::handshake(Io(stream))
                .await
                .expect("HTTP handshake");
            tokio::spawn(connection);
            sender
        });
        Self { runtime, sender }
    }

    /// Values -> JSON body -> POST -> JSON answer -> values.
    pub fn call(&mut self, observed: &Observed) -> Answer {
        let sender = &mut self.sender;
        self.runtime.block_on(async {
            let body = json!({
                "parent": observed.parent,
                "children": observed.children,
                "related": observed.related,
            });
            let request = HttpRequest::post("/reconcile")
                .header(hyper::header::HOST, "127.0.0.1")
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(
                    serde_json::to_vec(&body).expect("JSON body"),
                )))
                .expect("HTTP request");
            let response = sender.send_request(request).await.expect("webhook answers");
            assert!(response.status().is_success(), "{}", response.status());
            let body = response
                .into_body()
                .collect()
                .await
                .expect("webhook body")
                .to_bytes();
            let answer: WebhookAnswer = serde_json::from_slice(&body).expect("JSON answer");
            Answer {
                children: answer.children,
                status: answer.status,
            }
        })
    }
}

/// Where the webhook server runs.
pub enum Server {
    /// A thread of its own, as a separate process would: every request
    /// wakes the server and every answer wakes the client.
    OwnThread,
    /// The client's thread, on the client's runtime: no thread wake-ups,
    /// only HTTP, loopback TCP and JSON (the floor of the floor).
    ClientThread,
}

/// Accepts connections on `listener` and serves the webhook on each.
async fn serve(listener: std::net::TcpListener) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        stream.set_nodelay(true).expect("nodelay");
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(Io(stream), hyper::service::service_fn(webhook)),
        );
    }
}

fn single_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime")
}

/// A tokio `TcpStream` as hyper's I/O traits (what `hyper_util::rt::TokioIo`
/// does, without the dependency).
struct Io(TcpStream);

impl hyper::rt::Read for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0; 16 << 10];
        let len = buf.remaining().min(chunk.len());
        let mut read = tokio::io::ReadBuf::new(&mut chunk[..len]);
        match Pin::new(&mut self.0).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                buf.put_slice(read.filled());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
