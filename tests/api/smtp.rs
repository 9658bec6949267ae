//! A scripted SMTP relay on 127.0.0.1 for the delivery tests: it speaks enough SMTP for lettre,
//! records what it accepts, and can refuse a recipient permanently (550), refuse it for a while
//! (451), or be down altogether.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A message the relay accepted.
#[derive(Clone, Debug)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// The message with quoted-printable soft line breaks and escapes undone, for assertions.
    pub fn text(&self) -> String {
        let joined = self.data.replace("=\r\n", "");
        let mut out = String::new();
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit()
            {
                let v = u8::from_str_radix(&joined[i + 1..i + 3], 16).unwrap();
                out.push(v as char);
                i += 3;
            } else {
                out.push(bytes[i] as char);
                i += 1;
            }
        }
        out
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.data
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
    }
}

#[derive(Default)]
struct Script {
    received: Vec<Received>,
    rejected: HashSet<String>,
    tempfail: HashMap<String, u32>,
    /// Recipients whose RCPT TO is not answered until they are unstalled (a relay that hangs).
    stalled: HashSet<String>,
    /// RCPT TOs held back so far.
    stalls: u32,
    /// How long each message waits, once its data has arrived, for the relay's final reply.
    slowness: std::time::Duration,
}

pub struct FakeSmtp {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FakeSmtp {
    pub async fn start() -> FakeSmtp {
        Self::start_on("127.0.0.1:0".parse().unwrap(), Arc::default()).await
    }

    async fn start_on(addr: SocketAddr, script: Arc<Mutex<Script>>) -> FakeSmtp {
        let listener = TcpListener::bind(addr).await.expect("the fake relay binds");
        let addr = listener.local_addr().unwrap();
        let s = script.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, s).await;
                });
            }
        });
        FakeSmtp {
            addr,
            script,
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// Messages accepted for `to`.
    pub fn received_for(&self, to: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .collect()
    }

    /// Answers 550 to this recipient until [`FakeSmtp::accept`].
    pub fn reject(&self, to: &str) {
        self.script.lock().unwrap().rejected.insert(to.to_string());
    }

    pub fn accept(&self, to: &str) {
        self.script.lock().unwrap().rejected.remove(to);
    }

    /// Answers 451 to this recipient the next `times` times.
    pub fn tempfail(&self, to: &str, times: u32) {
        self.script
            .lock()
            .unwrap()
            .tempfail
            .insert(to.to_string(), times);
    }

    /// How many RCPT TOs have been held back by [`FakeSmtp::stall`] so far.
    pub fn stalls(&self) -> u32 {
        self.script.lock().unwrap().stalls
    }

    /// Leaves RCPT TO for this recipient unanswered until [`FakeSmtp::unstall`], which answers
    /// it, so that a send held mid-way goes on if its client is still there.
    pub fn stall(&self, to: &str) {
        self.script.lock().unwrap().stalled.insert(to.to_string());
    }

    /// Makes every message wait `per_message` for the relay's final reply (a slow relay).
    pub fn slow(&self, per_message: std::time::Duration) {
        self.script.lock().unwrap().slowness = per_message;
    }

    pub fn unstall(&self, to: &str) {
        self.script.lock().unwrap().stalled.remove(to);
    }

    /// Stops listening (connections are refused) until [`FakeSmtp::restart`].
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Listens again on the same port, keeping what it received.
    pub async fn restart(&mut self) {
        self.stop();
        let mut again = Self::start_on(self.addr, self.script.clone()).await;
        self.task = again.task.take();
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_stalled(script: &Mutex<Script>, addr: &str) -> bool {
    script.lock().unwrap().stalled.contains(addr)
}

async fn serve(stream: tokio::net::TcpStream, script: Arc<Mutex<Script>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 fake.relay ESMTP ready\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-fake.relay\r\n250 8BITMIME\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            to.clear();
            "250 2.1.0 OK\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let addr = command[8..]
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string();
            if is_stalled(&script, &addr) {
                script.lock().unwrap().stalls += 1;
                // Hang like a wedged relay until unstalled; a client that gives up first closes
                // the connection, and the late reply goes nowhere.
                while is_stalled(&script, &addr) {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
            let mut s = script.lock().unwrap();
            if s.rejected.contains(&addr) {
                "550 5.1.1 No such user here\r\n".into()
            } else if let Some(n) = s.tempfail.get_mut(&addr).filter(|n| **n > 0) {
                *n -= 1;
                "451 4.3.0 Mailbox temporarily unavailable, try again later\r\n".into()
            } else {
                to.push(addr);
                "250 2.1.5 OK\r\n".into()
            }
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            let slowness = script.lock().unwrap().slowness;
            tokio::time::sleep(slowness).await;
            script.lock().unwrap().received.push(Received {
                to: std::mem::take(&mut to),
                data,
            });
            "250 2.0.0 OK queued\r\n".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 OK\r\n".into()
        } else {
            "502 5.5.2 Command not recognized\r\n".into()
        };
        write.write_all(reply.as_bytes()).await?;
    }
}
