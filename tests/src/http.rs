//! Plain HTTP/1.1 requests to the host's health and metrics endpoints, and
//! sums over the Prometheus text they answer.

use std::net::SocketAddr;

/// `GET path` on a host's endpoint (`/metrics`, `/readyz`...): the status
/// code and the body. Panics when the endpoint cannot be reached.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connecting to the host's endpoint");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("sending a request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("reading the response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_default();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default();
    (status, body.to_string())
}

/// The sum of the samples of metric `name` in a Prometheus text whose
/// labels satisfy `keep` (given the text between the braces).
pub fn metric_sum(metrics: &str, name: &str, keep: impl Fn(&str) -> bool) -> u64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once('}')?,
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            keep(labels)
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
        })
        .map(|value| value as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_summed_by_label() {
        let text = "# HELP x\nx_total{a=\"1\"} 2\nx_total{a=\"2\"} 3\nx_total_other 9\nx_total 4\n";
        assert_eq!(
            metric_sum(text, "x_total", |labels| labels.contains("a=\"1\"")),
            2
        );
        assert_eq!(metric_sum(text, "x_total", |_| true), 9);
    }
}
