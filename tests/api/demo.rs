//! `serve --demo` as a consumer's test double: the same business, member and invitation ids on
//! every start, a bearer token minted once with a fixed secret valid across restarts, and, with a
//! fixed token key, the same acceptance tokens.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use crate::helpers::temp_dir;

const SECRET: &str = "a-consumer-fixed-secret-0123456789abcdef";
const TOKEN_KEY: &str = "a-consumer-fixed-token-key-0123456789abcdef";
const BIN: &str = env!("CARGO_BIN_EXE_leadping-invitations");

/// A `serve --demo` process on a fresh data directory; killed when dropped.
struct Demo {
    child: Child,
    json: serde_json::Value,
}

impl Demo {
    fn start(name: &str) -> Demo {
        let data = temp_dir(name);
        let out = data.join("demo.json");
        let mut child = Command::new(BIN)
            .args(["serve", "--demo", "--bind", "127.0.0.1:0", "--demo-out"])
            .arg(&out)
            .env("LEADPING_DATA_DIR", &data)
            .env("LEADPING_JWT_SECRET", SECRET)
            .env("LEADPING_TOKEN_KEY", TOKEN_KEY)
            .env("LEADPING_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        loop {
            let line = lines.next().expect("the server reports the demo").unwrap();
            if line.contains("demo written to") {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        let json = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        Demo { child, json }
    }

    /// Every id the demo names, in order: businesses, their members, their invitations.
    fn ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for b in self.json["businesses"].as_array().unwrap() {
            ids.push(b["id"].as_str().unwrap().to_string());
            for m in b["members"].as_array().unwrap() {
                ids.push(m["userId"].as_str().unwrap().to_string());
            }
            for i in b["invitationIds"].as_array().unwrap() {
                ids.push(i.as_str().unwrap().to_string());
            }
        }
        ids
    }

    /// The acceptance token the demo reports for an invitation of the first business.
    fn acceptance_token(&self, invitation_id: &str) -> String {
        self.json["businesses"][0]["acceptanceTokens"][invitation_id]
            .as_str()
            .expect("the demo reports the invitation's acceptance token")
            .to_string()
    }

    fn base_url(&self) -> &str {
        self.json["baseUrl"].as_str().unwrap()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ids of the invitations `token` sees in its business.
async fn listed(base_url: &str, token: &str) -> Vec<String> {
    let rows: serde_json::Value = reqwest::Client::new()
        .get(format!("{base_url}/businesses/me/invitations"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .expect("the token is accepted")
        .json()
        .await
        .unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_demo_is_the_same_on_every_start_and_a_minted_token_outlives_restarts() {
    let minted = Command::new(BIN)
        .args([
            "token",
            "--business",
            "biz_demo_acme",
            "--user",
            "usr_acme_owner",
            "--role",
            "Owner",
        ])
        .env("LEADPING_JWT_SECRET", SECRET)
        .env("LEADPING_DATA_DIR", temp_dir("demo-token"))
        .output()
        .expect("the token command runs");
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_string();

    let seeded = vec!["inv_demo_acme_2".to_string(), "inv_demo_acme".to_string()];
    let first = Demo::start("demo-first");
    let ids = first.ids();
    assert!(ids.contains(&"inv_demo_acme".to_string()), "{ids:?}");
    assert_eq!(listed(first.base_url(), &token).await, seeded);
    let acceptance = first.acceptance_token("inv_demo_acme");
    drop(first);

    let second = Demo::start("demo-second");
    assert_eq!(second.ids(), ids, "the same ids on a fresh start");
    assert_eq!(
        listed(second.base_url(), &token).await,
        seeded,
        "the token minted before the restart still works"
    );
    assert_eq!(
        second.acceptance_token("inv_demo_acme"),
        acceptance,
        "the same acceptance token on a fresh start"
    );
    let looked_up: serde_json::Value = reqwest::get(format!(
        "{}/businesses/invitations/token/{acceptance}",
        second.base_url()
    ))
    .await
    .unwrap()
    .error_for_status()
    .expect("the acceptance token from before the restart finds the invitation")
    .json()
    .await
    .unwrap();
    assert_eq!(looked_up["id"], "inv_demo_acme");
}
