//! The real server on a real socket, driven through the generated client.

use leadping_invitations::problem::{PROBLEM_TYPE_BASE, ProblemType};
use leadping_invitations_client::types::Problem;
use leadping_invitations_client::{Error, ResponseValue};

use crate::helpers::{Backend, JWT_SECRET, spawn_app, token};

#[tokio::test]
async fn serves_the_checked_in_contract_byte_for_byte() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.text().await.unwrap();
    let on_disk =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap();
    assert!(
        body == on_disk,
        "GET /openapi.json differs from the checked-in file"
    );
}

#[tokio::test]
async fn serves_a_self_contained_docs_page_rendered_from_the_contract() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let page = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'self';"), "{csp}");
    assert!(
        !csp.contains("http"),
        "the page may load nothing from elsewhere: {csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<script src="docs/swagger-ui-bundle.js">"#),
        "{html}"
    );
    assert!(html.contains(r#"url: "openapi.json""#), "{html}");
    assert!(
        html.contains("validatorUrl: null"),
        "no validator badge: {html}"
    );
    assert!(
        !html.contains("http"),
        "no absolute URL on the page: {html}"
    );

    for (path, content_type, marker) in [
        (
            "/docs/swagger-ui-bundle.js",
            "text/javascript; charset=utf-8",
            "SwaggerUIBundle",
        ),
        (
            "/docs/swagger-ui.css",
            "text/css; charset=utf-8",
            ".swagger-ui",
        ),
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            body.len() > 100_000 && body.contains(marker),
            "{path}: the vendored file"
        );
    }

    // The page is not part of the API.
    assert!(!leadping_invitations::OPENAPI_JSON.contains("/docs"));
}

/// The problem a call failed with, checked for the RFC 9457 shape and the request id.
pub fn expect_problem<T: std::fmt::Debug>(
    result: Result<ResponseValue<T>, Error<Problem>>,
    status: u16,
    kind: ProblemType,
) -> Problem {
    let response = match result {
        Err(Error::ErrorResponse(response)) => response,
        other => panic!("expected a {status} problem, got {other:?}"),
    };
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "application/problem+json"
    );
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_string();
    let problem = response.into_inner();
    assert_eq!(problem.type_, kind.uri());
    assert_eq!(problem.status, i32::from(status));
    assert_eq!(problem.title, kind.title());
    assert!(!problem.detail.is_empty());
    assert_eq!(problem.request_id.as_deref(), Some(request_id.as_str()));
    problem
}

/// A problem read without the client: its status and body, after checking that it is sent as
/// `application/problem+json` and tied to its request (the body's `requestId` is the
/// `x-request-id` header, `instance` the path), even when it was refused before its operation ran.
async fn raw_problem(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let path = response.url().path().to_string();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["requestId"], request_id.as_str(), "{body}");
    assert_eq!(body["instance"], path.as_str(), "{body}");
    (status, body)
}

#[tokio::test]
async fn malformed_bodies_get_a_validation_problem() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let b = app.business("acme").await;
    // The caller is judged first: a request without a valid token gets the 401, whatever its
    // body (dropshot still reads and parses the body, but the 401 is the answer).
    let bearer = format!("Bearer {}", token(&b.id, &b.owner, "Owner"));
    let url = app.url("/businesses/me/invitations");
    let cases: Vec<(&str, String)> = vec![
        ("not JSON", "{".into()),
        ("wrong type", r#"{"email": 5}"#.into()),
        ("missing email", r#"{"role": "Agent"}"#.into()),
        (
            "unknown role",
            r#"{"email": "a@example.com", "role": "Emperor"}"#.into(),
        ),
        // A body over the size limit is a 413 of its own type
        // (operations::oversized_and_non_json_bodies_get_413_and_415_problems_and_change_nothing).
    ];
    for (what, body) in cases {
        let response = app
            .http
            .post(&url)
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, problem) = raw_problem(response).await;
        assert_eq!(status, 400, "{what}");
        assert_eq!(
            problem["type"],
            format!("{PROBLEM_TYPE_BASE}validation"),
            "{what}"
        );
        assert_eq!(problem["title"], "Request validation failed", "{what}");
        assert_eq!(problem["status"], 400, "{what}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}"
        );
        // The problem must also parse as the contract's Problem type.
        serde_json::from_value::<Problem>(problem).unwrap();
    }
}

#[tokio::test]
async fn operations_on_the_current_business_need_a_valid_bearer_token() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let expired = {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = leadping_invitations::auth::Claims {
            sub: "usr_1".into(),
            org_id: "biz_1".into(),
            role: None,
            exp: now - 600,
            iat: None,
            iss: None,
            aud: None,
        };
        leadping_invitations::auth::mint(JWT_SECRET, &claims).unwrap()
    };
    let foreign = {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = leadping_invitations::auth::Claims {
            sub: "usr_1".into(),
            org_id: "biz_1".into(),
            role: None,
            exp: now + 600,
            iat: None,
            iss: None,
            aud: None,
        };
        leadping_invitations::auth::mint("a-different-secret-0123456789abcdef", &claims).unwrap()
    };
    let cases: [(Option<String>, &str, &str); 5] = [
        (None, "Bearer", "no Authorization header"),
        (
            Some("Basic dXNlcjpwYXNz".into()),
            "Bearer",
            "not a bearer token",
        ),
        (
            Some("Bearer garbage".into()),
            "Bearer error=\"invalid_token\"",
            "not a JWT",
        ),
        (
            Some(format!("Bearer {expired}")),
            "Bearer error=\"invalid_token\"",
            "expired",
        ),
        (
            Some(format!("Bearer {foreign}")),
            "Bearer error=\"invalid_token\"",
            "signed by an untrusted key",
        ),
    ];
    let requests = [
        ("GET", "/businesses/me/invitations", None),
        (
            "POST",
            "/businesses/me/invitations",
            Some(r#"{"email": "ann@example.com"}"#),
        ),
        ("POST", "/businesses/me/invitations/inv_1/resend", None),
        ("DELETE", "/businesses/me/invitations/inv_1", None),
    ];
    for (authorization, challenge, what) in &cases {
        for (method, path, body) in &requests {
            let mut request = app.http.request(method.parse().unwrap(), app.url(path));
            if let Some(a) = authorization {
                request = request.header("authorization", a);
            }
            if let Some(b) = body {
                request = request.header("content-type", "application/json").body(*b);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path}: {what}");
            assert_eq!(
                response.headers()["www-authenticate"],
                *challenge,
                "{method} {path}: {what}"
            );
            let request_id = response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_string();
            let problem: Problem = response.json().await.unwrap();
            assert_eq!(problem.type_, ProblemType::Unauthorized.uri(), "{what}");
            assert_eq!(problem.status, 401);
            assert_eq!(problem.request_id.as_deref(), Some(request_id.as_str()));
            assert_eq!(problem.instance.as_deref(), Some(*path));
        }
    }

    // The generated client without a token gets the same problem, as a typed error.
    let result = app.client.list_business_invitations().send().await;
    expect_problem(result, 401, ProblemType::Unauthorized);

    // The token operations take no bearer token: the acceptance token is the credential.
    expect_problem(
        app.client
            .get_business_invitation_by_token()
            .token("t")
            .send()
            .await,
        404,
        ProblemType::NotFound,
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_get_problems_too() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let response = app.http.get(app.url("/nowhere")).send().await.unwrap();
    let (status, problem) = raw_problem(response).await;
    assert_eq!(status, 404);
    assert_eq!(problem["type"], format!("{PROBLEM_TYPE_BASE}not-found"));
    serde_json::from_value::<Problem>(problem).unwrap();

    // A path with an empty segment is not another spelling of an operation's path: the router
    // would otherwise serve `//businesses/me/invitations` as the list.
    let b = app.business("paths").await;
    let auth = format!("Bearer {}", crate::helpers::token(&b.id, &b.owner, "Owner"));
    for path in [
        "//businesses/me/invitations",
        "/businesses//me/invitations",
        "/businesses/me/invitations/",
    ] {
        let response = app
            .http
            .get(app.url(path))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        let (status, problem) = raw_problem(response).await;
        assert_eq!(status, 404, "{path}: {problem}");
        assert_eq!(problem["type"], format!("{PROBLEM_TYPE_BASE}not-found"));
    }
    let listed = app
        .http
        .get(app.url("/businesses/me/invitations"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);

    let response = app
        .http
        .put(app.url("/businesses/me/invitations"))
        .send()
        .await
        .unwrap();
    let mut allow: Vec<String> = response
        .headers()
        .get_all(http::header::ALLOW)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(',').map(|m| m.trim().to_string()))
        .collect();
    allow.sort();
    assert_eq!(allow, ["GET", "POST"]);
    let (status, problem) = raw_problem(response).await;
    assert_eq!(status, 405);
    assert_eq!(
        problem["type"],
        format!("{PROBLEM_TYPE_BASE}method-not-allowed")
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("PUT"),
        "{problem}"
    );
    serde_json::from_value::<Problem>(problem).unwrap();
}
