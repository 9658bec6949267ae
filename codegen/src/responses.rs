//! An operation's `responses` -> one enum with a variant per declared status, carrying that
//! status's body and typed response headers, so that a handler can answer exactly what the
//! contract declares and nothing else; and the document-wide support that makes it work:
//! the response-header structs, the extractor wrappers that turn a request refused before its
//! operation runs into one of its declared responses, and the document function that puts the
//! declared error responses where dropshot 0.18 can only write `4XX`/`5XX` ranges.
//!
//! Why the indirection: dropshot documents one success status per operation and errors as
//! ranges of one error type, and its error path can set neither headers nor a content type on a
//! custom error body. So every declared response, errors included, travels as the operation's
//! `Ok` value, whose `HttpResponse` impl writes status, headers and `application/problem+json`;
//! dropshot documents the success response (with `x-request-id`) itself, and the generated
//! `openapi_document` writes each declared error response from the same generated types, and
//! each operation's security requirement from whether its method takes the caller.

use std::collections::BTreeMap;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use serde_json::Value;

use crate::Config;
use crate::error::{GenError, only_keys, ptr, str_at};
use crate::names::{ident, pascal, snake};

/// The response header dropshot sets on every response; every response declares it.
pub const REQUEST_ID: &str = "x-request-id";
/// The media type of every error response (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The error statuses a response can be declared with, and their variants' names.
const ERROR_STATUSES: &[(u16, &str, &str)] = &[
    (400, "BadRequest", "BAD_REQUEST"),
    (401, "Unauthorized", "UNAUTHORIZED"),
    (403, "Forbidden", "FORBIDDEN"),
    (404, "NotFound", "NOT_FOUND"),
    (405, "MethodNotAllowed", "METHOD_NOT_ALLOWED"),
    (406, "NotAcceptable", "NOT_ACCEPTABLE"),
    (408, "RequestTimeout", "REQUEST_TIMEOUT"),
    (409, "Conflict", "CONFLICT"),
    (410, "Gone", "GONE"),
    (412, "PreconditionFailed", "PRECONDITION_FAILED"),
    (413, "PayloadTooLarge", "PAYLOAD_TOO_LARGE"),
    (415, "UnsupportedMediaType", "UNSUPPORTED_MEDIA_TYPE"),
    (422, "UnprocessableEntity", "UNPROCESSABLE_ENTITY"),
    (429, "TooManyRequests", "TOO_MANY_REQUESTS"),
    (500, "InternalServerError", "INTERNAL_SERVER_ERROR"),
    (502, "BadGateway", "BAD_GATEWAY"),
    (503, "ServiceUnavailable", "SERVICE_UNAVAILABLE"),
    (504, "GatewayTimeout", "GATEWAY_TIMEOUT"),
];

/// What the operations of one document share: the response-header structs (one per distinct
/// set of headers), the `x-request-id` declaration and the error body schema.
#[derive(Default)]
pub struct Shared {
    header_sets: BTreeMap<String, (Value, String, TokenStream)>,
    request_id: Option<(Value, String)>,
    error_schema: Option<(String, String)>,
    /// (path, method, security scheme, response type) of every operation, for
    /// `openapi_document`.
    operations: Vec<(String, String, Option<String>, Ident)>,
}

/// What the generated code of one operation needs to know about its responses.
pub struct Responses {
    /// The response enum's name.
    pub name: Ident,
    /// The enum and its impls.
    pub tokens: TokenStream,
}

/// What must be declared because the operation's inputs can be refused before it runs.
pub struct Needs {
    /// The operation has parameters or a body, which dropshot refuses with a 400.
    pub bad_request: bool,
    /// The operation requires a credential, whose absence is a 401.
    pub unauthorized: bool,
    /// The operation takes a body, which the server refuses when too large (413), of another
    /// content type or none (415), or not arrived in time (408).
    pub body: bool,
}

#[allow(clippy::too_many_arguments)]
pub fn generate(
    op: &Value,
    path: &str,
    method: &str,
    scheme: Option<String>,
    pointer: &str,
    type_base: &str,
    needs: Needs,
    shared: &mut Shared,
    cfg: &Config,
) -> Result<Responses, GenError> {
    let rp = ptr(pointer, "responses");
    let responses = op
        .get("responses")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            GenError::new(
                &rp,
                "an operation needs `responses`",
                "one success status and each error status it can return",
            )
        })?;

    let mut success = None;
    let mut variants = Vec::new();
    let mut to_result = Vec::new();
    let mut statuses = Vec::new();
    let mut body_arms = Vec::new();
    let mut rejection_arms = Vec::new();
    let mut declared = Vec::new();
    let mut seen = Vec::new();
    for (code, response) in responses {
        let p = ptr(&rp, code);
        if code.len() == 3 && code.starts_with('2') {
            if success.is_some() {
                return Err(GenError::new(
                    &p,
                    "dropshot and progenitor allow one success status per operation",
                    "a single 2xx response",
                ));
            }
            success = Some((code.clone(), response, p));
            continue;
        }
        let Some((status, variant, konst)) = ERROR_STATUSES
            .iter()
            .find(|(s, _, _)| s.to_string() == *code)
        else {
            let hint = if code.ends_with("XX") || code == "default" {
                "declare each status the operation returns on its own (400, 404, 429, ...), each with its description, headers and the problem schema"
            } else {
                "a 2xx success, or one of the error statuses 400, 401, 403, 404, 405, 406, 408, 409, 410, 412, 413, 415, 422, 429, 500, 502, 503, 504"
            };
            return Err(GenError::new(
                &p,
                format!("response `{code}` cannot be expressed"),
                hint,
            ));
        };
        seen.push(*status);
        only_keys(
            response,
            &p,
            &["description", "headers", "content"],
            "an error response",
        )?;
        let description = str_at(response, &p, "description")?;
        let error_ref = error_content(response, &p, shared)?;
        let headers = response_headers(response, &p, shared, cfg)?;
        let variant = format_ident!("{}", variant);
        let konst = format_ident!("{}", konst);
        let doc = format!("{code}: {description}");
        let header_entries = headers.entries.iter().map(|(name, set)| {
            let set = set.as_ref().map_or_else(
                || quote! { RequestIdHeader },
                |s| {
                    let s = format_ident!("{}", s);
                    quote! { #s }
                },
            );
            quote! { header_object::<#set>(#name) }
        });
        declared.push(quote! {
            (#code, error_response(#description, ::std::vec![#(#header_entries),*], #error_ref))
        });
        statuses.push(quote! { Self::#variant(..) => ::http::StatusCode::#konst });
        match headers.set {
            None => {
                variants.push(quote! { #[doc = #doc] #variant(ErrorBody) });
                to_result.push(quote! {
                    Self::#variant(body) => problem_response(::http::StatusCode::#konst, &body, ::http::HeaderMap::new())
                });
                body_arms.push(quote! { Self::#variant(body) });
                rejection_arms.push(quote! {
                    #status => ::std::result::Result::Ok(Self::#variant(rejection.into()))
                });
            }
            Some(set) => {
                let set = format_ident!("{}", set);
                variants.push(quote! { #[doc = #doc] #variant(ErrorBody, #set) });
                to_result.push(quote! {
                    Self::#variant(body, headers) => problem_response(::http::StatusCode::#konst, &body, headers.header_map()?)
                });
                body_arms.push(quote! { Self::#variant(body, _) });
                rejection_arms.push(quote! {
                    #status => match rejection.headers().and_then(#set::from_header_map) {
                        ::std::option::Option::Some(headers) => ::std::result::Result::Ok(Self::#variant(rejection.into(), headers)),
                        ::std::option::Option::None => ::std::result::Result::Err(rejection),
                    }
                });
            }
        }
    }
    let (code, response, p) =
        success.ok_or_else(|| GenError::new(&rp, "no success response", "one 2xx response"))?;
    for (status, why, needed) in [
        (
            500,
            "every operation can fail unexpectedly (a bug), and answers that with a 500",
            true,
        ),
        (
            400,
            "dropshot refuses a path, query, header or body that does not parse with a 400",
            needs.bad_request,
        ),
        (
            401,
            "the operation requires a credential, and refuses a request without a valid one with a 401",
            needs.unauthorized,
        ),
        (
            413,
            "the operation takes a body, and refuses one over the server's size limit with a 413",
            needs.body,
        ),
        (
            415,
            "the operation takes a JSON body, and refuses a body of another content type (or none) with a 415",
            needs.body,
        ),
        (
            408,
            "the operation takes a body, and refuses one that does not arrive within the server's body timeout with a 408",
            needs.body,
        ),
    ] {
        if needed && !seen.contains(&status) {
            return Err(GenError::new(
                &rp,
                format!("no {status} response: {why}"),
                format!(
                    "declare `{status}` with its description, the `{REQUEST_ID}` header and the problem schema under {PROBLEM_JSON}"
                ),
            ));
        }
    }
    if responses
        .get("500")
        .and_then(|r| r.get("headers"))
        .and_then(Value::as_object)
        .is_some_and(|h| h.len() > 1)
    {
        return Err(GenError::new(
            &ptr(&ptr(&rp, "500"), "headers"),
            "a 500 answers a failure nobody foresaw, so it carries no headers of its own",
            format!("only `{REQUEST_ID}`"),
        ));
    }

    // The success response goes through dropshot's own coded response for its status, with
    // the contract's description and `x-request-id` documented through dropshot's
    // `HttpResponseHeaders`.
    only_keys(
        response,
        &p,
        &["description", "headers", "content"],
        "a success response",
    )?;
    let description = str_at(response, &p, "description")?;
    // Headers of its own beyond `x-request-id` travel in the success variant beside the body,
    // as an error status's do.
    let set = response_headers(response, &p, shared, cfg)?
        .set
        .map(|s| format_ident!("{}", s));
    let (variant, stock, konst) = match code.as_str() {
        "200" => (
            quote! { Ok },
            quote! { ::dropshot::HttpResponseOk },
            quote! { OK },
        ),
        "201" => (
            quote! { Created },
            quote! { ::dropshot::HttpResponseCreated },
            quote! { CREATED },
        ),
        "202" => (
            quote! { Accepted },
            quote! { ::dropshot::HttpResponseAccepted },
            quote! { ACCEPTED },
        ),
        "204" => (
            quote! { NoContent },
            quote! { ::dropshot::HttpResponseDeleted },
            quote! { NO_CONTENT },
        ),
        _ => {
            return Err(GenError::new(
                &p,
                format!("success status {code} is not supported"),
                "200, 201, 202 or 204",
            ));
        }
    };
    let variant_doc = format!("{code}: {description}");
    let (stock_ty, success_variant, success_result, success_status) =
        match crate::api::json_content(response, &p, cfg)? {
            Some(_) if code == "204" => {
                return Err(GenError::new(
                    &ptr(&p, "content"),
                    "a 204 response has no content (dropshot's `HttpResponseDeleted` carries none)",
                    "leave `content` out, or answer 200 with the body",
                ));
            }
            Some(body) => match &set {
                None => (
                    quote! { #stock<#body> },
                    quote! { #[doc = #variant_doc] #variant(#body) },
                    quote! { Self::#variant(body) => ::dropshot::HttpResponse::to_result(#stock(body)) },
                    quote! { Self::#variant(..) => ::http::StatusCode::#konst },
                ),
                Some(set) => (
                    quote! { #stock<#body> },
                    quote! { #[doc = #variant_doc] #variant(#body, #set) },
                    quote! {
                        Self::#variant(body, headers) => {
                            let mut response = ::dropshot::HttpResponse::to_result(#stock(body))?;
                            response.headers_mut().extend(headers.header_map()?);
                            ::std::result::Result::Ok(response)
                        }
                    },
                    quote! { Self::#variant(..) => ::http::StatusCode::#konst },
                ),
            },
            None if code == "204" && set.is_some() => {
                return Err(GenError::new(
                    &ptr(&p, "headers"),
                    "a 204 response here carries no headers but `x-request-id`",
                    "only `x-request-id`, or answer 200 with a body",
                ));
            }
            None if code == "204" => (
                quote! { #stock },
                quote! { #[doc = #variant_doc] #variant },
                quote! { Self::#variant => ::dropshot::HttpResponse::to_result(#stock()) },
                quote! { Self::#variant => ::http::StatusCode::#konst },
            ),
            None => {
                return Err(GenError::new(
                    &p,
                    "only a 204 response may have no content",
                    "content.application/json.schema",
                ));
            }
        };

    // dropshot documents one header struct's fields in name order; the success response's own
    // headers join `x-request-id` in that order.
    let more_headers = set.as_ref().map(|set| {
        quote! {
            metadata.headers.extend(
                <::dropshot::HttpResponseHeaders<#stock_ty, #set> as ::dropshot::HttpResponse>::response_metadata().headers,
            );
            metadata.headers.sort_by(|a, b| a.name.cmp(&b.name));
        }
    });
    let name = format_ident!("{}Response", type_base);
    let operation_id = op
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or(type_base);
    let doc = format!(
        "The responses of `{operation_id}`: exactly the statuses, bodies and headers the contract declares for it."
    );
    shared
        .operations
        .push((path.to_string(), method.to_string(), scheme, name.clone()));
    let tokens = quote! {
        #[doc = #doc]
        #[derive(Debug)]
        pub enum #name {
            #success_variant,
            #(#variants),*
        }
        impl ::dropshot::HttpResponse for #name {
            fn to_result(self) -> ::std::result::Result<::http::Response<::dropshot::Body>, ::dropshot::HttpError> {
                let mut response = match self {
                    #success_result,
                    #(#to_result),*
                }?;
                // The request's log line names the operation (and, for a problem, its type).
                response
                    .extensions_mut()
                    .get_or_insert_default::<::dropshot::LogFields>()
                    .0
                    .insert(0, ("operation_id", #operation_id.to_string()));
                ::std::result::Result::Ok(response)
            }
            fn response_metadata() -> ::dropshot::ApiEndpointResponse {
                let mut metadata = <::dropshot::HttpResponseHeaders<#stock_ty, RequestIdHeader> as ::dropshot::HttpResponse>::response_metadata();
                metadata.description = ::std::option::Option::Some(#description.to_string());
                #more_headers
                metadata
            }
            fn status_code(&self) -> ::http::StatusCode {
                OperationResponse::status(self)
            }
        }
        impl OperationResponse for #name {
            fn status(&self) -> ::http::StatusCode {
                match self {
                    #success_status,
                    #(#statuses),*
                }
            }
            fn error_body_mut(&mut self) -> ::std::option::Option<&mut ErrorBody> {
                match self {
                    #(#body_arms)|* => ::std::option::Option::Some(body),
                    _ => ::std::option::Option::None,
                }
            }
            fn internal_error(body: ErrorBody) -> Self {
                Self::InternalServerError(body)
            }
            fn from_rejection(rejection: Rejection) -> ::std::result::Result<Self, Rejection> {
                match rejection.status().as_u16() {
                    #(#rejection_arms,)*
                    _ => ::std::result::Result::Err(rejection),
                }
            }
            fn declared_errors() -> ::std::vec::Vec<(&'static str, ::serde_json::Value)> {
                ::std::vec![#(#declared),*]
            }
        }
    };
    Ok(Responses { name, tokens })
}

/// The `$ref` of an error response's problem schema, the same for every error response.
fn error_content(response: &Value, p: &str, shared: &mut Shared) -> Result<String, GenError> {
    let cp = ptr(p, "content");
    let hint = format!(
        "\"content\": {{\"{PROBLEM_JSON}\": {{\"schema\": {{\"$ref\": \"#/components/schemas/Problem\"}}}}}}"
    );
    let content = response
        .get("content")
        .ok_or_else(|| GenError::new(p, "an error response needs content", hint.clone()))?;
    only_keys(
        content,
        &cp,
        &[PROBLEM_JSON],
        "error content (RFC 9457 names application/problem+json)",
    )?;
    let mp = ptr(&cp, PROBLEM_JSON);
    let media = content
        .get(PROBLEM_JSON)
        .ok_or_else(|| GenError::new(&cp, "error content needs a problem", hint.clone()))?;
    // An `example` (a problem of this status) is documentation: docs and mock servers show it.
    only_keys(media, &mp, &["schema", "example"], "a media type")?;
    let sp = ptr(&mp, "schema");
    let schema = media
        .get("schema")
        .ok_or_else(|| GenError::new(&mp, "a media type needs a schema", hint.clone()))?;
    only_keys(schema, &sp, &["$ref"], "an error body schema")?;
    let r = str_at(schema, &sp, "$ref")?.to_string();
    match &shared.error_schema {
        None => shared.error_schema = Some((r.clone(), sp)),
        Some((first, at)) if *first != r => {
            return Err(GenError::new(
                &ptr(&sp, "$ref"),
                format!(
                    "every error response carries one problem schema, and {at} names `{first}`"
                ),
                format!("\"$ref\": \"{first}\""),
            ));
        }
        Some(_) => {}
    }
    Ok(r)
}

/// A response's headers: `x-request-id` (always, set by dropshot) and at most one set of
/// others, which the handler supplies through a generated struct.
struct Headers {
    /// In the document's order: (name, `None` for x-request-id or the set's struct name).
    entries: Vec<(String, Option<String>)>,
    set: Option<String>,
}

fn response_headers(
    response: &Value,
    p: &str,
    shared: &mut Shared,
    cfg: &Config,
) -> Result<Headers, GenError> {
    let hp = ptr(p, "headers");
    let request_id_hint = format!(
        "\"headers\": {{\"{REQUEST_ID}\": {{\"description\": ..., \"style\": \"simple\", \"required\": true, \"schema\": {{\"type\": \"string\"}}}}}}"
    );
    let headers = response
        .get("headers")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            GenError::new(
                p,
                format!("every response carries `{REQUEST_ID}`, so every response declares it"),
                request_id_hint.clone(),
            )
        })?;
    let mut entries = Vec::new();
    let mut own = serde_json::Map::new();
    for (name, header) in headers {
        let at = ptr(&hp, name);
        only_keys(
            header,
            &at,
            &["description", "style", "required", "schema"],
            "a response header (in the form dropshot writes)",
        )?;
        if header.get("style").and_then(Value::as_str) != Some("simple")
            || header.get("required") != Some(&Value::Bool(true))
        {
            return Err(GenError::new(
                &at,
                "a response header here is always sent, in dropshot's form",
                "\"style\": \"simple\", \"required\": true",
            ));
        }
        str_at(header, &at, "description")?;
        if name == REQUEST_ID {
            if header.get("schema") != Some(&serde_json::json!({"type": "string"})) {
                return Err(GenError::new(
                    &ptr(&at, "schema"),
                    "dropshot's request ID is a string",
                    "{\"type\": \"string\"}",
                ));
            }
            match &shared.request_id {
                None => shared.request_id = Some((header.clone(), at.clone())),
                Some((first, first_at)) if first != header => {
                    return Err(GenError::new(
                        &at,
                        format!("`{REQUEST_ID}` is declared differently at {first_at}"),
                        first.to_string(),
                    ));
                }
                Some(_) => {}
            }
            entries.push((name.clone(), None));
        } else {
            let token = !name.is_empty()
                && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if name.eq_ignore_ascii_case(REQUEST_ID) || !token {
                return Err(GenError::new(
                    &at,
                    format!("header `{name}` cannot be sent as written, or become a Rust field"),
                    format!(
                        "a name of letters, digits and `-`, starting with a letter; the request ID as `{REQUEST_ID}`"
                    ),
                ));
            }
            if [
                "content-type",
                "content-length",
                "transfer-encoding",
                "connection",
            ]
            .iter()
            .any(|reserved| name.eq_ignore_ascii_case(reserved))
            {
                return Err(GenError::new(
                    &at,
                    format!("`{name}` is set by the server itself, not by a handler"),
                    "leave it out (an error response's media type is its content's key)",
                ));
            }
            own.insert(name.clone(), header.clone());
            entries.push((name.clone(), Some(String::new())));
        }
    }
    if !entries.iter().any(|(_, set)| set.is_none()) {
        return Err(GenError::new(
            &hp,
            format!("every response carries `{REQUEST_ID}`, so every response declares it"),
            request_id_hint,
        ));
    }
    if own.is_empty() {
        return Ok(Headers { entries, set: None });
    }
    let set_name = format!(
        "{}Header{}",
        own.keys().map(|k| header_type_name(k)).collect::<String>(),
        if own.len() > 1 { "s" } else { "" }
    );
    let signature = Value::Object(own.clone());
    match shared.header_sets.get(&set_name) {
        Some((first, first_at, _)) if *first != signature => {
            return Err(GenError::new(
                &hp,
                format!(
                    "these headers are declared differently at {first_at}; one name, one meaning"
                ),
                first.to_string(),
            ));
        }
        Some(_) => {}
        None => {
            let tokens = header_set(&set_name, &own, &hp, cfg)?;
            shared
                .header_sets
                .insert(set_name.clone(), (signature, hp.clone(), tokens));
        }
    }
    for entry in &mut entries {
        if entry.1.is_some() {
            entry.1 = Some(set_name.clone());
        }
    }
    Ok(Headers {
        entries,
        set: Some(set_name),
    })
}

/// `WWW-Authenticate` -> `WwwAuthenticate`, `Retry-After` -> `RetryAfter`.
fn header_type_name(header: &str) -> String {
    pascal(&header.to_ascii_lowercase())
}

/// The struct a handler fills in for a set of response headers.
fn header_set(
    name: &str,
    headers: &serde_json::Map<String, Value>,
    pointer: &str,
    cfg: &Config,
) -> Result<TokenStream, GenError> {
    let type_ident = format_ident!("{}", name);
    let mut fields = Vec::new();
    let mut inserts = Vec::new();
    let mut reads = Vec::new();
    for (header, declaration) in headers {
        let at = ptr(&ptr(pointer, header), "schema");
        let mut schema = declaration.get("schema").cloned().ok_or_else(|| {
            GenError::new(&at, "a header needs a schema", "{\"type\": \"string\"}")
        })?;
        // `minimum` on an integer header (Retry-After's seconds) becomes a schemars range.
        let minimum = match schema
            .as_object_mut()
            .and_then(|o| o.shift_remove("minimum"))
        {
            None => None,
            Some(m) => {
                if schema.get("type").and_then(Value::as_str) != Some("integer") {
                    return Err(GenError::new(
                        &ptr(&at, "minimum"),
                        "`minimum` is supported on integer headers only",
                        "drop it",
                    ));
                }
                Some(m.as_i64().ok_or_else(|| {
                    GenError::new(
                        &ptr(&at, "minimum"),
                        "`minimum` must be a whole number",
                        "1",
                    )
                })?)
            }
        };
        // A header is sent as the field's `to_string()`: only plain strings and integers read
        // back as they were written.
        let plain = matches!(
            (
                schema.get("type").and_then(Value::as_str),
                schema.get("format").and_then(Value::as_str),
            ),
            (Some("string" | "boolean"), None) | (Some("integer"), Some("int32" | "int64"))
        );
        let bounded = ["minLength", "maxLength", "pattern"]
            .iter()
            .any(|k| schema.get(*k).is_some());
        if !plain || bounded {
            return Err(GenError::new(
                &at,
                "a response header's schema is a plain string, a boolean or an int32/int64 integer (with an optional `minimum`)",
                "{\"type\": \"string\"}, {\"type\": \"boolean\"} or {\"type\": \"integer\", \"format\": \"int64\", \"minimum\": 1}",
            ));
        }
        let ft = crate::types::field_type(&schema, &at, cfg)?;
        if ft.nullable || ft.description.is_some() {
            return Err(GenError::new(
                &at,
                "a header's schema is neither nullable nor described (the description belongs on the header)",
                "a plain schema such as {\"type\": \"string\"}",
            ));
        }
        let ty = ft.ty;
        let attrs = ft.attrs;
        let range = minimum.map(|m| quote! { #[schemars(range(min = #m))] });
        let field = ident(&snake(header));
        let description = str_at(declaration, &ptr(pointer, header), "description")?;
        let lower = header.to_ascii_lowercase();
        fields.push(quote! {
            #[doc = #description]
            #[schemars(description = #description)]
            #attrs
            #range
            #[serde(rename = #header)]
            pub #field: #ty,
        });
        if let Some(m) = minimum {
            // The contract's bound, held when the header is written: a smaller value is a bug.
            inserts.push(quote! {
                if self.#field < #m {
                    return ::std::result::Result::Err(::dropshot::HttpError::for_internal_error(
                        format!("header {} is {}, below its minimum {}", #header, self.#field, #m),
                    ));
                }
            });
        }
        inserts.push(quote! {
            map.insert(
                ::http::header::HeaderName::from_static(#lower),
                ::http::HeaderValue::from_str(&self.#field.to_string())
                    .map_err(|e| ::dropshot::HttpError::for_internal_error(format!("header {}: {e}", #header)))?,
            );
        });
        reads.push(quote! {
            #field: map.get(#lower)?.to_str().ok()?.parse().ok()?,
        });
    }
    let doc = format!(
        "Response headers: {}.",
        headers
            .keys()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(quote! {
        #[doc = #doc]
        #[derive(Clone, Debug, PartialEq, ::serde::Deserialize, ::serde::Serialize, ::schemars::JsonSchema)]
        pub struct #type_ident { #(#fields)* }
        impl #type_ident {
            fn header_map(&self) -> ::std::result::Result<::http::HeaderMap, ::dropshot::HttpError> {
                let mut map = ::http::HeaderMap::new();
                #(#inserts)*
                ::std::result::Result::Ok(map)
            }
            /// The headers as a refusal made before the operation ran set them (unused for a
            /// set that only a success response carries).
            #[allow(dead_code)]
            fn from_header_map(map: &::http::HeaderMap) -> ::std::option::Option<Self> {
                ::std::option::Option::Some(Self { #(#reads)* })
            }
        }
    })
}

/// The document-wide items: header structs, the `x-request-id` struct, the extractor wrappers,
/// the response trait, and `openapi_document`.
pub fn support(shared: &Shared, cfg: &Config) -> Result<TokenStream, GenError> {
    let Some((request_id, _)) = &shared.request_id else {
        return Ok(quote! {});
    };
    let request_id_doc = request_id
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let error_body = match &shared.error_schema {
        Some((r, at)) => crate::types::schema_ref(r, at, cfg)?,
        None => return Ok(quote! {}),
    };
    let sets = shared.header_sets.values().map(|(_, _, t)| t);
    let operations = shared
        .operations
        .iter()
        .map(|(path, method, scheme, name)| {
            let pointer = format!(
                "/paths/{}/{}",
                path.replace('~', "~0").replace('/', "~1"),
                method
            );
            let security = match scheme {
                Some(s) => quote! { ::serde_json::json!([{ #s: [] }]) },
                None => quote! { ::serde_json::json!([]) },
            };
            quote! { (#pointer, <#name as OperationResponse>::declared_errors(), #security) }
        });
    Ok(quote! {
        /// The body of every error response: the contract's problem schema.
        pub type ErrorBody = #error_body;

        /// The media type of every error response (RFC 9457).
        pub const PROBLEM_CONTENT_TYPE: &str = #PROBLEM_JSON;

        #(#sets)*

        /// The `x-request-id` header dropshot sets on every response (documented, never
        /// filled in by a handler).
        #[derive(Clone, Debug, PartialEq, ::serde::Deserialize, ::serde::Serialize, ::schemars::JsonSchema)]
        pub struct RequestIdHeader {
            #[doc = #request_id_doc]
            #[serde(rename = "x-request-id")]
            pub x_request_id: ::std::string::String,
        }

        /// What the generated endpoints need of the error body: built from a refusal made before
        /// the operation ran, and tied to the response it is sent in.
        pub trait ProblemBody: ::std::convert::From<Rejection> {
            /// States `status` (the response's own) and ties the body to the request.
            fn answer(&mut self, status: ::http::StatusCode, request_id: &str, path: &str);
        }

        /// Ties an error response's body to the request and to the status it is sent with, so
        /// that no handler can forget to, or send a body that states another status.
        pub fn answer<R: OperationResponse>(response: &mut R, request_id: &str, path: &str) {
            let status = response.status();
            if let ::std::option::Option::Some(body) = response.error_body_mut() {
                ProblemBody::answer(body, status, request_id, path);
            }
        }

        /// What every operation's response type can do beyond dropshot's `HttpResponse`.
        pub trait OperationResponse: Sized {
            /// The response's status.
            fn status(&self) -> ::http::StatusCode;
            /// The problem of an error response, to tie it to the request it answers.
            fn error_body_mut(&mut self) -> ::std::option::Option<&mut ErrorBody>;
            /// The 500 every operation declares.
            fn internal_error(body: ErrorBody) -> Self;
            /// The declared response for a request refused before the operation ran, or the
            /// refusal back when its status (or the headers that status needs) is not declared.
            fn from_rejection(rejection: Rejection) -> ::std::result::Result<Self, Rejection>;
            /// The declared error responses, as the OpenAPI document writes them.
            fn declared_errors() -> ::std::vec::Vec<(&'static str, ::serde_json::Value)>;
        }

        /// The declared response for a refusal made before the operation ran; a refusal whose
        /// status the operation does not declare is a bug, logged and answered with its 500.
        pub fn reject<R: OperationResponse>(log: &::slog::Logger, rejection: Rejection) -> R {
            R::from_rejection(rejection).unwrap_or_else(|rejection| {
                ::slog::error!(log, "a request was refused with a status its operation does not declare";
                    "status" => rejection.status().as_u16(),
                    "error" => rejection.error.internal_message.clone());
                R::internal_error(rejection.into_internal().into())
            })
        }

        /// A request refused before its operation ran (a path, query, header or body that does
        /// not parse; a missing or refused credential), with the request it belongs to.
        #[derive(Debug)]
        pub struct Rejection {
            pub error: ::dropshot::HttpError,
            pub request_id: ::std::string::String,
            pub path: ::std::string::String,
        }

        impl Rejection {
            fn new<C: ::dropshot::ServerContext>(error: ::dropshot::HttpError, rqctx: &::dropshot::RequestContext<C>) -> Self {
                Rejection {
                    error,
                    request_id: rqctx.request_id.clone(),
                    path: rqctx.request.uri().path().to_string(),
                }
            }
            pub fn status(&self) -> ::http::StatusCode {
                self.error.status_code.as_status()
            }
            pub fn headers(&self) -> ::std::option::Option<&::http::HeaderMap> {
                self.error.headers.as_deref()
            }
            fn into_internal(self) -> Self {
                Rejection {
                    error: ::dropshot::HttpError::for_internal_error(format!(
                        "refused with the undeclared status {}: {}",
                        self.status(),
                        self.error.internal_message
                    )),
                    ..self
                }
            }
        }

        /// A shared extractor whose refusal becomes one of the operation's declared responses
        /// instead of dropshot's own error body.
        pub struct Checked<E>(pub ::std::result::Result<E, Rejection>);

        #[::async_trait::async_trait]
        impl<E: ::dropshot::SharedExtractor + 'static> ::dropshot::SharedExtractor for Checked<E> {
            async fn from_request<C: ::dropshot::ServerContext>(
                rqctx: &::dropshot::RequestContext<C>,
            ) -> ::std::result::Result<Self, ::dropshot::HttpError> {
                ::std::result::Result::Ok(Checked(
                    E::from_request(rqctx).await.map_err(|e| Rejection::new(e, rqctx)),
                ))
            }
            fn metadata(body_content_type: ::dropshot::ApiEndpointBodyContentType) -> ::dropshot::ExtractorMetadata {
                E::metadata(body_content_type)
            }
        }

        /// The body extractor whose refusal becomes one of the operation's declared responses.
        pub struct CheckedBody<E>(pub ::std::result::Result<E, Rejection>);

        #[::async_trait::async_trait]
        impl<E: ::dropshot::ExclusiveExtractor + 'static> ::dropshot::ExclusiveExtractor for CheckedBody<E> {
            async fn from_request<C: ::dropshot::ServerContext>(
                rqctx: &::dropshot::RequestContext<C>,
                request: ::http::Request<::dropshot::Body>,
            ) -> ::std::result::Result<Self, ::dropshot::HttpError> {
                if let ::std::option::Option::Some(refusal) = body_precheck(rqctx, &request) {
                    return ::std::result::Result::Ok(CheckedBody(::std::result::Result::Err(
                        Rejection::new(refusal, rqctx),
                    )));
                }
                ::std::result::Result::Ok(CheckedBody(
                    E::from_request(rqctx, request)
                        .await
                        .map_err(|e| Rejection::new(body_refusal(e), rqctx)),
                ))
            }
            fn metadata(body_content_type: ::dropshot::ApiEndpointBodyContentType) -> ::dropshot::ExtractorMetadata {
                E::metadata(body_content_type)
            }
        }

        /// What can be refused from the request's head alone, before a byte of its body is read:
        /// a JSON body without `Content-Type: application/json` (415; dropshot would read the
        /// body first, and take a missing content type for JSON), and a declared
        /// `Content-Length` over the size limit (413; dropshot would read, and discard, all of it
        /// first).
        fn body_precheck<C: ::dropshot::ServerContext>(
            rqctx: &::dropshot::RequestContext<C>,
            request: &::http::Request<::dropshot::Body>,
        ) -> ::std::option::Option<::dropshot::HttpError> {
            let headers = request.headers();
            if matches!(rqctx.endpoint.body_content_type, ::dropshot::ApiEndpointBodyContentType::Json) {
                let content_type = headers
                    .get(::http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
                if content_type.as_deref() != ::std::option::Option::Some("application/json") {
                    let found = content_type.map_or_else(
                        || "none".to_string(),
                        |t| format!("\"{t}\""),
                    );
                    return ::std::option::Option::Some(::dropshot::HttpError::for_client_error(
                        ::std::option::Option::None,
                        ::dropshot::ClientErrorStatusCode::UNSUPPORTED_MEDIA_TYPE,
                        format!("expected content type \"application/json\", got {found}"),
                    ));
                }
            }
            let declared = headers
                .get(::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let max = rqctx.request_body_max_bytes();
            if declared.is_some_and(|n| n > max as u64) {
                return ::std::option::Option::Some(::dropshot::HttpError::for_client_error(
                    ::std::option::Option::None,
                    ::dropshot::ClientErrorStatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body exceeded maximum size of {max} bytes"),
                ));
            }
            ::std::option::Option::None
        }

        /// dropshot answers a body over the size limit and a body of another content type with a
        /// 400 whose message says which; HTTP has a status for each (413, 415), which every
        /// operation with a body declares.
        fn body_refusal(e: ::dropshot::HttpError) -> ::dropshot::HttpError {
            let status = if e.internal_message.starts_with("request body exceeded maximum size") {
                ::dropshot::ClientErrorStatusCode::PAYLOAD_TOO_LARGE
            } else if e.internal_message.starts_with("expected content type")
                || e.internal_message.starts_with("unsupported content-type")
            {
                ::dropshot::ClientErrorStatusCode::UNSUPPORTED_MEDIA_TYPE
            } else {
                return e;
            };
            ::dropshot::HttpError::for_client_error(e.error_code, status, e.internal_message)
        }

        fn problem_response(
            status: ::http::StatusCode,
            body: &ErrorBody,
            headers: ::http::HeaderMap,
        ) -> ::std::result::Result<::http::Response<::dropshot::Body>, ::dropshot::HttpError> {
            let body = ::serde_json::to_value(body)
                .map_err(|e| ::dropshot::HttpError::for_internal_error(e.to_string()))?;
            let problem_type = body
                .get("type")
                .and_then(::serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string();
            let mut response = ::http::Response::builder()
                .status(status)
                .header(::http::header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)
                .body(::dropshot::Body::from(body.to_string()))
                .map_err(|e| ::dropshot::HttpError::for_internal_error(e.to_string()))?;
            response.headers_mut().extend(headers);
            response
                .extensions_mut()
                .insert(::dropshot::LogFields(::std::vec![("problem_type", problem_type)]));
            ::std::result::Result::Ok(response)
        }

        /// A response header as the document writes it, from the field of `H` that carries it
        /// (its doc comment is the description; schemars writes integer bounds as floats).
        fn header_object<H: ::schemars::JsonSchema>(name: &str) -> (::std::string::String, ::serde_json::Value) {
            let root = ::schemars::r#gen::SchemaSettings::openapi3()
                .into_generator()
                .into_root_schema_for::<H>();
            let object = root.schema.object.as_deref();
            let required = object.is_some_and(|o| o.required.contains(name));
            let mut schema = object
                .and_then(|o| o.properties.get(name))
                .and_then(|s| ::serde_json::to_value(s).ok())
                .unwrap_or_default();
            let description = schema.as_object_mut().and_then(|s| s.shift_remove("description"));
            if schema.get("type").and_then(::serde_json::Value::as_str) == ::std::option::Option::Some("integer") {
                for bound in ["minimum", "maximum"] {
                    if let ::std::option::Option::Some(v) = schema.get_mut(bound) {
                        if let ::std::option::Option::Some(f) = v.as_f64() {
                            if f.fract() == 0.0 {
                                *v = ::serde_json::Value::from(f as i64);
                            }
                        }
                    }
                }
            }
            let mut header = ::serde_json::Map::new();
            if let ::std::option::Option::Some(d) = description {
                header.insert("description".into(), d);
            }
            header.insert("style".into(), "simple".into());
            if required {
                header.insert("required".into(), true.into());
            }
            header.insert("schema".into(), schema);
            (name.to_string(), ::serde_json::Value::Object(header))
        }

        fn error_response(
            description: &str,
            headers: ::std::vec::Vec<(::std::string::String, ::serde_json::Value)>,
            schema: &str,
        ) -> ::serde_json::Value {
            ::serde_json::json!({
                "description": description,
                "headers": ::serde_json::Value::Object(headers.into_iter().collect()),
                "content": { #PROBLEM_JSON: { "schema": { "$ref": schema } } }
            })
        }

        /// The OpenAPI document this code describes, as text in dropshot's layout: what dropshot
        /// writes for `api`, with each operation's declared error responses in place of the
        /// `4XX`/`5XX` ranges dropshot 0.18 writes for an error type (and without the response
        /// object those ranges referred to), and each operation's security requirement.
        pub fn openapi_document<C: ::dropshot::ServerContext>(
            api: &::dropshot::ApiDescription<C>,
        ) -> ::serde_json::Result<::std::string::String> {
            let mut doc = openapi_definition(api).json()?;
            for (pointer, declared, security) in [#(#operations),*] {
                let ::std::option::Option::Some(operation) =
                    doc.pointer_mut(pointer).and_then(::serde_json::Value::as_object_mut)
                else {
                    continue;
                };
                if let ::std::option::Option::Some(responses) = operation
                    .get_mut("responses")
                    .and_then(::serde_json::Value::as_object_mut)
                {
                    responses.shift_remove("4XX");
                    responses.shift_remove("5XX");
                    responses.extend(declared.into_iter().map(|(k, v)| (k.to_string(), v)));
                }
                // The operation's security requirement is whether its method receives the
                // authenticated caller (dropshot writes none).
                operation.insert("security".into(), security);
            }
            if let ::std::option::Option::Some(components) =
                doc.get_mut("components").and_then(::serde_json::Value::as_object_mut)
            {
                components.shift_remove("responses");
            }
            ::std::result::Result::Ok(::serde_json::to_string_pretty(&doc)? + "\n")
        }
    })
}
