//! Each construct the generator refuses, refused by its JSON pointer with what to write instead.
//! Every case mutates a document the generator accepts (`specs/everything.json`, which
//! round-trips) in one place.

mod common;

use common::config;
use leadping_codegen::{GenError, generate};
use serde_json::{Value, json};

const EVERYTHING: &str = include_str!("specs/everything.json");

fn refusal(base: &str, mutate: impl FnOnce(&mut Value)) -> GenError {
    let mut doc: Value = serde_json::from_str(base).unwrap();
    mutate(&mut doc);
    match generate(&doc.to_string(), &config()) {
        Ok(_) => panic!("accepted: {doc}"),
        Err(e) => e,
    }
}

fn at<'a>(doc: &'a mut Value, pointer: &str) -> &'a mut Value {
    doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("the base document has {pointer}"))
}

fn set(doc: &mut Value, pointer: &str, key: &str, value: Value) {
    at(doc, pointer)
        .as_object_mut()
        .unwrap()
        .insert(key.into(), value);
}

fn remove(doc: &mut Value, pointer: &str, key: &str) {
    at(doc, pointer).as_object_mut().unwrap().shift_remove(key);
}

const LIST: &str = "/paths/~1items/get";
const CREATE: &str = "/paths/~1items/post";
const GET: &str = "/paths/~1items~1{itemId}/get";
const DELETE: &str = "/paths/~1items~1{itemId}/delete";
const ITEM: &str = "/components/schemas/Item";

type Case = (
    &'static str,
    &'static str,
    Box<dyn FnOnce(&mut Value)>,
    &'static str,
    &'static str,
);

/// (name, base, mutation, pointer of the refusal, words its message must contain)
fn cases() -> Vec<Case> {
    let e = EVERYTHING;
    vec![
        (
            "unknown top-level key",
            e,
            Box::new(|v| set(v, "", "webhooks", json!({}))),
            "/webhooks",
            "not supported in the document",
        ),
        (
            "another OpenAPI version",
            e,
            Box::new(|v| set(v, "", "openapi", json!("3.1.0"))),
            "/openapi",
            "3.0.3",
        ),
        (
            "unknown components key",
            e,
            Box::new(|v| set(v, "/components", "parameters", json!({}))),
            "/components/parameters",
            "not supported in components",
        ),
        (
            "no info",
            e,
            Box::new(|v| remove(v, "", "info")),
            "/info",
            "needs `info`",
        ),
        (
            "unknown info key",
            e,
            Box::new(|v| set(v, "/info", "x-logo", json!({}))),
            "/info/x-logo",
            "not supported in info",
        ),
        (
            "no title",
            e,
            Box::new(|v| remove(v, "/info", "title")),
            "/info/title",
            "must be a string",
        ),
        (
            "version not semver",
            e,
            Box::new(|v| set(v, "/info", "version", json!("v2"))),
            "/info/version",
            "not a plain semantic version",
        ),
        (
            "info description not a string",
            e,
            Box::new(|v| set(v, "/info", "description", json!(1))),
            "/info/description",
            "must be a string",
        ),
        (
            "unknown contact key",
            e,
            Box::new(|v| set(v, "/info/contact", "x-team", json!("a"))),
            "/info/contact/x-team",
            "not supported in a contact",
        ),
        (
            "license without a name",
            e,
            Box::new(|v| remove(v, "/info/license", "name")),
            "/info/license/name",
            "must be a string",
        ),
        (
            "tags not an array",
            e,
            Box::new(|v| set(v, "", "tags", json!({}))),
            "/tags",
            "must be an array",
        ),
        (
            "unknown tag key",
            e,
            Box::new(|v| set(v, "/tags/0", "externalDocs", json!({}))),
            "/tags/0/externalDocs",
            "not supported in a tag",
        ),
        (
            "no paths",
            e,
            Box::new(|v| remove(v, "", "paths")),
            "/paths",
            "needs `paths`",
        ),
        (
            "path-level parameters",
            e,
            Box::new(|v| set(v, "/paths/~1items", "parameters", json!([]))),
            "/paths/~1items/parameters",
            "path-level parameters",
        ),
        (
            "unknown operation key",
            e,
            Box::new(|v| set(v, LIST, "callbacks", json!({}))),
            "/paths/~1items/get/callbacks",
            "not supported in an operation",
        ),
        (
            "no operationId",
            e,
            Box::new(|v| remove(v, LIST, "operationId")),
            "/paths/~1items/get/operationId",
            "must be a string",
        ),
        (
            "operationId not a Rust name",
            e,
            Box::new(|v| set(v, LIST, "operationId", json!("list-items"))),
            "/paths/~1items/get/operationId",
            "cannot name a Rust method",
        ),
        (
            "description without a summary",
            e,
            Box::new(|v| remove(v, LIST, "summary")),
            "/paths/~1items/get/description",
            "never stands without one",
        ),
        (
            "summary not a string",
            e,
            Box::new(|v| set(v, LIST, "summary", json!(1))),
            "/paths/~1items/get/summary",
            "must be a string",
        ),
        (
            "summary on two lines",
            e,
            Box::new(|v| set(v, LIST, "summary", json!("List\nitems"))),
            "/paths/~1items/get/summary",
            "one trimmed line",
        ),
        (
            "description with a single line break",
            e,
            Box::new(|v| set(v, LIST, "description", json!("a\nb"))),
            "/paths/~1items/get/description",
            "doc-comment folding",
        ),
        (
            "deprecated not a boolean",
            e,
            Box::new(|v| set(v, GET, "deprecated", json!("yes"))),
            "/paths/~1items~1{itemId}/get/deprecated",
            "must be a boolean",
        ),
        (
            "unknown parameter key",
            e,
            Box::new(|v| set(v, &format!("{LIST}/parameters/0"), "example", json!("x"))),
            "/paths/~1items/get/parameters/0/example",
            "not supported in a parameter",
        ),
        (
            "parameter name not a Rust name",
            e,
            Box::new(|v| set(v, &format!("{LIST}/parameters/0"), "name", json!("cur$or"))),
            "/paths/~1items/get/parameters/0/name",
            "cannot become a Rust field",
        ),
        (
            "optional path parameter",
            e,
            Box::new(|v| remove(v, &format!("{GET}/parameters/0"), "required")),
            "/paths/~1items~1{itemId}/get/parameters/0/required",
            "always required",
        ),
        (
            "parameter without a schema",
            e,
            Box::new(|v| remove(v, &format!("{LIST}/parameters/1"), "schema")),
            "/paths/~1items/get/parameters/1",
            "needs a `schema`",
        ),
        (
            "described parameter schema",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{LIST}/parameters/1/schema"),
                    "description",
                    json!("d"),
                )
            }),
            "/paths/~1items/get/parameters/1/schema/description",
            "carries no description",
        ),
        (
            "nullable not a boolean",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{LIST}/parameters/0/schema"),
                    "nullable",
                    json!("yes"),
                )
            }),
            "/paths/~1items/get/parameters/0/schema/nullable",
            "must be a boolean",
        ),
        (
            "required and nullable",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{LIST}/parameters/1/schema"),
                    "nullable",
                    json!(true),
                )
            }),
            "/paths/~1items/get/parameters/1/schema/nullable",
            "never nullable",
        ),
        (
            "optional query parameter not nullable",
            e,
            Box::new(|v| remove(v, &format!("{LIST}/parameters/0/schema"), "nullable")),
            "/paths/~1items/get/parameters/0/schema",
            "\"nullable\": true",
        ),
        (
            "optional header nullable",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{LIST}/parameters/2/schema"),
                    "nullable",
                    json!(true),
                )
            }),
            "/paths/~1items/get/parameters/2/schema/nullable",
            "without `nullable`",
        ),
        (
            "cookie parameter",
            e,
            Box::new(|v| set(v, &format!("{LIST}/parameters/2"), "in", json!("cookie"))),
            "/paths/~1items/get/parameters/2/in",
            "not supported",
        ),
        (
            "optional request body",
            e,
            Box::new(|v| remove(v, &format!("{CREATE}/requestBody"), "required")),
            "/paths/~1items/post/requestBody",
            "always required",
        ),
        (
            "request body without content",
            e,
            Box::new(|v| remove(v, &format!("{CREATE}/requestBody"), "content")),
            "/paths/~1items/post/requestBody",
            "needs JSON content",
        ),
        (
            "form request body",
            e,
            Box::new(|v| {
                let body = at(v, &format!("{CREATE}/requestBody/content"))
                    .as_object_mut()
                    .unwrap();
                let media = body.shift_remove("application/json").unwrap();
                body.insert("application/x-www-form-urlencoded".into(), media);
            }),
            "/paths/~1items/post/requestBody/content/application~1x-www-form-urlencoded",
            "JSON only",
        ),
        (
            "media type without a schema",
            e,
            Box::new(|v| {
                remove(
                    v,
                    &format!("{CREATE}/requestBody/content/application~1json"),
                    "schema",
                )
            }),
            "/paths/~1items/post/requestBody/content/application~1json",
            "needs a schema",
        ),
        (
            "inline body schema",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{CREATE}/requestBody/content/application~1json"),
                    "schema",
                    json!({"type": "string"}),
                )
            }),
            "/paths/~1items/post/requestBody/content/application~1json/schema",
            "must be a `$ref` or an array",
        ),
        (
            "array body of inline items",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{LIST}/responses/200/content/application~1json/schema"),
                    "items",
                    json!({"type": "string"}),
                )
            }),
            "/paths/~1items/get/responses/200/content/application~1json/schema/items",
            "must be a `$ref`",
        ),
        (
            "array body without dropshot's title",
            e,
            Box::new(|v| {
                remove(
                    v,
                    &format!("{LIST}/responses/200/content/application~1json/schema"),
                    "title",
                )
            }),
            "/paths/~1items/get/responses/200/content/application~1json/schema/title",
            "titles an array body",
        ),
        (
            "remote schema reference",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{CREATE}/requestBody/content/application~1json/schema"),
                    "$ref",
                    json!("other.json#/Item"),
                )
            }),
            "/paths/~1items/post/requestBody/content/application~1json/schema",
            "not a local schema reference",
        ),
        (
            "no responses",
            e,
            Box::new(|v| remove(v, LIST, "responses")),
            "/paths/~1items/get/responses",
            "needs `responses`",
        ),
        (
            "two success statuses",
            e,
            Box::new(|v| {
                let ok = at(v, &format!("{LIST}/responses/200")).clone();
                set(v, &format!("{LIST}/responses"), "203", ok);
            }),
            "/paths/~1items/get/responses/203",
            "one success status",
        ),
        (
            "a range of error statuses",
            e,
            Box::new(|v| {
                let problem = at(v, &format!("{LIST}/responses/500")).clone();
                set(v, &format!("{LIST}/responses"), "4XX", problem);
            }),
            "/paths/~1items/get/responses/4XX",
            "cannot be expressed",
        ),
        (
            "an error status outside the table",
            e,
            Box::new(|v| {
                let problem = at(v, &format!("{LIST}/responses/500")).clone();
                set(v, &format!("{LIST}/responses"), "418", problem);
            }),
            "/paths/~1items/get/responses/418",
            "cannot be expressed",
        ),
        (
            "no success response",
            e,
            Box::new(|v| remove(v, &format!("{LIST}/responses"), "200")),
            "/paths/~1items/get/responses",
            "no success response",
        ),
        (
            "no 500",
            e,
            Box::new(|v| remove(v, &format!("{LIST}/responses"), "500")),
            "/paths/~1items/get/responses",
            "no 500 response",
        ),
        (
            "inputs without a 400",
            e,
            Box::new(|v| remove(v, &format!("{LIST}/responses"), "400")),
            "/paths/~1items/get/responses",
            "no 400 response",
        ),
        (
            "a credential without a 401",
            e,
            Box::new(|v| remove(v, &format!("{DELETE}/responses"), "401")),
            "/paths/~1items~1{itemId}/delete/responses",
            "no 401 response",
        ),
        (
            "a body without a 413",
            e,
            Box::new(|v| remove(v, &format!("{CREATE}/responses"), "413")),
            "/paths/~1items/post/responses",
            "no 413 response",
        ),
        (
            "a body without a 415",
            e,
            Box::new(|v| remove(v, &format!("{CREATE}/responses"), "415")),
            "/paths/~1items/post/responses",
            "no 415 response",
        ),
        (
            "an object open to properties of a schema (a map)",
            e,
            Box::new(|v| {
                set(
                    v,
                    "/components/schemas/NewItem",
                    "additionalProperties",
                    json!({"type": "string"}),
                )
            }),
            "/components/schemas/NewItem/additionalProperties",
            "accepts no others",
        ),
        (
            "a body without a 408",
            e,
            Box::new(|v| remove(v, &format!("{CREATE}/responses"), "408")),
            "/paths/~1items/post/responses",
            "no 408 response",
        ),
        (
            "a 500 with headers of its own",
            e,
            Box::new(|v| {
                let retry = at(v, &format!("{CREATE}/responses/429/headers/Retry-After")).clone();
                set(
                    v,
                    &format!("{LIST}/responses/500/headers"),
                    "Retry-After",
                    retry,
                );
            }),
            "/paths/~1items/get/responses/500/headers",
            "carries no headers of its own",
        ),
        (
            "an error response without content",
            e,
            Box::new(|v| remove(v, &format!("{LIST}/responses/500"), "content")),
            "/paths/~1items/get/responses/500",
            "needs content",
        ),
        (
            "a problem under application/json",
            e,
            Box::new(|v| {
                let media = at(v, &format!("{LIST}/responses/500/content"))
                    .as_object_mut()
                    .unwrap()
                    .shift_remove("application/problem+json")
                    .unwrap();
                set(
                    v,
                    &format!("{LIST}/responses/500/content"),
                    "application/json",
                    media,
                );
            }),
            "/paths/~1items/get/responses/500/content/application~1json",
            "not supported in error content",
        ),
        (
            "two problem schemas",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{GET}/responses/404/content/application~1problem+json/schema"),
                    "$ref",
                    json!("#/components/schemas/Item"),
                )
            }),
            "/paths/~1items~1{itemId}/get/responses/404/content/application~1problem+json/schema/$ref",
            "one problem schema",
        ),
        (
            "a response without x-request-id",
            e,
            Box::new(|v| remove(v, &format!("{LIST}/responses/500/headers"), "x-request-id")),
            "/paths/~1items/get/responses/500/headers",
            "every response carries",
        ),
        (
            "a response without headers",
            e,
            Box::new(|v| remove(v, &format!("{LIST}/responses/200"), "headers")),
            "/paths/~1items/get/responses/200",
            "every response carries",
        ),
        (
            "x-request-id as a number",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{LIST}/responses/500/headers/x-request-id"),
                    "schema",
                    json!({"type": "integer", "format": "int64"}),
                )
            }),
            "/paths/~1items/get/responses/500/headers/x-request-id/schema",
            "is a string",
        ),
        (
            "x-request-id declared two ways",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{LIST}/responses/500/headers/x-request-id"),
                    "description",
                    json!("Another meaning."),
                )
            }),
            "/paths/~1items/get/responses/500/headers/x-request-id",
            "declared differently",
        ),
        (
            "a header that is not always sent",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{CREATE}/responses/429/headers/Retry-After"),
                    "required",
                    json!(false),
                )
            }),
            "/paths/~1items/post/responses/429/headers/Retry-After",
            "always sent",
        ),
        (
            "a header set declared two ways",
            e,
            Box::new(|v| {
                set(
                    v,
                    "/paths/~1items~1{itemId}/put/responses/429/headers/Retry-After",
                    "description",
                    json!("Another meaning."),
                )
            }),
            "/paths/~1items~1{itemId}/put/responses/429/headers",
            "declared differently",
        ),
        (
            "a minimum on a string header",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{DELETE}/responses/401/headers/WWW-Authenticate/schema"),
                    "minimum",
                    json!(1),
                )
            }),
            "/paths/~1items~1{itemId}/delete/responses/401/headers/WWW-Authenticate/schema/minimum",
            "integer headers only",
        ),
        (
            "a header schema that is nullable",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{DELETE}/responses/401/headers/WWW-Authenticate/schema"),
                    "nullable",
                    json!(true),
                )
            }),
            "/paths/~1items~1{itemId}/delete/responses/401/headers/WWW-Authenticate/schema",
            "neither nullable nor described",
        ),
        (
            "a header name with a space",
            e,
            Box::new(|v| {
                let retry = at(v, &format!("{CREATE}/responses/429/headers"))
                    .as_object_mut()
                    .unwrap()
                    .shift_remove("Retry-After")
                    .unwrap();
                set(
                    v,
                    &format!("{CREATE}/responses/429/headers"),
                    "Retry After",
                    retry,
                );
            }),
            "/paths/~1items/post/responses/429/headers/Retry After",
            "cannot be sent as written",
        ),
        (
            "a header the server sets itself",
            e,
            Box::new(|v| {
                let www = at(
                    v,
                    &format!("{DELETE}/responses/401/headers/WWW-Authenticate"),
                )
                .clone();
                set(
                    v,
                    &format!("{DELETE}/responses/401/headers"),
                    "Content-Type",
                    www,
                );
            }),
            "/paths/~1items~1{itemId}/delete/responses/401/headers/Content-Type",
            "set by the server itself",
        ),
        (
            "a date-time header",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{DELETE}/responses/401/headers/WWW-Authenticate"),
                    "schema",
                    json!({"type": "string", "format": "date-time"}),
                )
            }),
            "/paths/~1items~1{itemId}/delete/responses/401/headers/WWW-Authenticate/schema",
            "plain string, a boolean or an int32/int64 integer",
        ),
        (
            "a length bound on a header",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{DELETE}/responses/401/headers/WWW-Authenticate/schema"),
                    "maxLength",
                    json!(100),
                )
            }),
            "/paths/~1items~1{itemId}/delete/responses/401/headers/WWW-Authenticate/schema",
            "plain string, a boolean or an int32/int64 integer",
        ),
        (
            "a security scheme the extractor does not read",
            e,
            Box::new(|v| {
                set(
                    v,
                    "/components/securitySchemes",
                    "itemAuth",
                    json!({"type": "apiKey", "in": "query", "name": "key"}),
                )
            }),
            "/components/securitySchemes/itemAuth",
            "not one",
        ),
        (
            "a 204 with headers of its own (dropshot's HttpResponseDeleted has none)",
            e,
            Box::new(|v| {
                let retry = at(v, &format!("{CREATE}/responses/429/headers/Retry-After")).clone();
                set(
                    v,
                    &format!("{DELETE}/responses/204/headers"),
                    "Retry-After",
                    retry,
                );
            }),
            "/paths/~1items~1{itemId}/delete/responses/204/headers",
            "carries no headers but",
        ),
        (
            "unknown success response key",
            e,
            Box::new(|v| set(v, &format!("{LIST}/responses/200"), "links", json!({}))),
            "/paths/~1items/get/responses/200/links",
            "not supported in a success response",
        ),
        (
            "an operation that does not state its security",
            e,
            Box::new(|v| remove(v, LIST, "security")),
            "/paths/~1items/get",
            "states its security",
        ),
        (
            "a document-wide security requirement",
            e,
            Box::new(|v| set(v, "", "security", json!([{"itemAuth": []}]))),
            "/security",
            "document-wide",
        ),
        (
            "an undeclared security scheme",
            e,
            Box::new(|v| set(v, LIST, "security", json!([{"apiKey": []}]))),
            "/paths/~1items/get/security/0/apiKey",
            "no security scheme",
        ),
        (
            "a security scheme without an extractor",
            e,
            Box::new(|v| {
                set(
                    v,
                    "/components/securitySchemes",
                    "apiKey",
                    json!({"type": "apiKey", "in": "header", "name": "X-Key"}),
                );
                set(v, LIST, "security", json!([{"apiKey": []}]));
            }),
            "/paths/~1items/get/security/0/apiKey",
            "no extractor is configured",
        ),
        (
            "security scopes",
            e,
            Box::new(|v| set(v, LIST, "security", json!([{"itemAuth": ["read"]}]))),
            "/paths/~1items/get/security/0/itemAuth",
            "scopes are not supported",
        ),
        (
            "alternative security requirements",
            e,
            Box::new(|v| set(v, LIST, "security", json!([{"itemAuth": []}, {}]))),
            "/paths/~1items/get/security",
            "alternative security requirements",
        ),
        (
            "unsupported success status",
            e,
            Box::new(|v| {
                let ok = at(v, &format!("{LIST}/responses"))
                    .as_object_mut()
                    .unwrap()
                    .shift_remove("200")
                    .unwrap();
                set(v, &format!("{LIST}/responses"), "206", ok);
            }),
            "/paths/~1items/get/responses/206",
            "not supported",
        ),
        (
            "a 200 without content",
            e,
            Box::new(|v| remove(v, &format!("{GET}/responses/200"), "content")),
            "/paths/~1items~1{itemId}/get/responses/200",
            "only a 204",
        ),
        (
            "a 204 with content",
            e,
            Box::new(|v| {
                let body = at(v, &format!("{GET}/responses/200/content")).clone();
                set(v, &format!("{DELETE}/responses/204"), "content", body);
            }),
            "/paths/~1items~1{itemId}/delete/responses/204/content",
            "has no content",
        ),
        (
            "schema name not a Rust type",
            e,
            Box::new(|v| {
                let item = at(v, ITEM).clone();
                set(v, "/components/schemas", "item-2", item);
            }),
            "/components/schemas/item-2",
            "not a Rust type name",
        ),
        (
            "a named string schema",
            e,
            Box::new(|v| set(v, "/components/schemas", "Name", json!({"type": "string"}))),
            "/components/schemas/Name",
            "only objects and string enums",
        ),
        (
            "unknown object key",
            e,
            Box::new(|v| set(v, ITEM, "patternProperties", json!({}))),
            "/components/schemas/Item/patternProperties",
            "not supported in an object schema",
        ),
        (
            "required not an array",
            e,
            Box::new(|v| set(v, ITEM, "required", json!("id"))),
            "/components/schemas/Item/required",
            "array of names",
        ),
        (
            "object without properties",
            e,
            Box::new(|v| remove(v, ITEM, "properties")),
            "/components/schemas/Item",
            "needs `properties`",
        ),
        (
            "required but no such property",
            e,
            Box::new(|v| {
                at(v, &format!("{ITEM}/required"))
                    .as_array_mut()
                    .unwrap()
                    .push(json!("ghost"))
            }),
            "/components/schemas/Item/required",
            "`ghost` is required but not a property",
        ),
        (
            "property name not a Rust name",
            e,
            Box::new(|v| {
                let id = at(v, &format!("{ITEM}/properties/id")).clone();
                set(v, &format!("{ITEM}/properties"), "$id", id);
            }),
            "/components/schemas/Item/properties/$id",
            "cannot become a Rust field",
        ),
        (
            "required and nullable property",
            e,
            Box::new(|v| set(v, &format!("{ITEM}/properties/id"), "nullable", json!(true))),
            "/components/schemas/Item/properties/id",
            "required property cannot be nullable",
        ),
        (
            "unknown enum key",
            e,
            Box::new(|v| set(v, "/components/schemas/Kind", "default", json!("Plain"))),
            "/components/schemas/Kind/default",
            "not supported in a string enum schema",
        ),
        (
            "enum not an array",
            e,
            Box::new(|v| set(v, "/components/schemas/Kind", "enum", json!("Plain"))),
            "/components/schemas/Kind/enum",
            "must be an array",
        ),
        (
            "enum value not a string",
            e,
            Box::new(|v| {
                at(v, "/components/schemas/Kind/enum")
                    .as_array_mut()
                    .unwrap()
                    .push(json!(3))
            }),
            "/components/schemas/Kind/enum/2",
            "must be strings",
        ),
        (
            "enum value not a Rust name",
            e,
            Box::new(|v| {
                at(v, "/components/schemas/Kind/enum")
                    .as_array_mut()
                    .unwrap()
                    .push(json!("2nd"))
            }),
            "/components/schemas/Kind/enum/2",
            "cannot become a Rust variant",
        ),
        (
            "unknown property key",
            e,
            Box::new(|v| set(v, &format!("{ITEM}/properties/id"), "readOnly", json!(true))),
            "/components/schemas/Item/properties/id/readOnly",
            "not supported in a property schema",
        ),
        (
            "length not a number",
            e,
            Box::new(|v| {
                set(
                    v,
                    "/components/schemas/NewItem/properties/name",
                    "maxLength",
                    json!("100"),
                )
            }),
            "/components/schemas/NewItem/properties/name/maxLength",
            "whole number",
        ),
        (
            "length on a formatted string",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{ITEM}/properties/website"),
                    "maxLength",
                    json!(2000),
                )
            }),
            "/components/schemas/Item/properties/website/maxLength",
            "plain strings only",
        ),
        (
            "property nullable not a boolean",
            e,
            Box::new(|v| set(v, &format!("{ITEM}/properties/note"), "nullable", json!(1))),
            "/components/schemas/Item/properties/note/nullable",
            "must be a boolean",
        ),
        (
            "allOf of two",
            e,
            Box::new(|v| {
                at(v, &format!("{ITEM}/properties/kind/allOf"))
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"$ref": "#/components/schemas/Kind"}))
            }),
            "/components/schemas/Item/properties/kind/allOf",
            "single-element `allOf`",
        ),
        (
            "allOf with neither description nor nullable",
            e,
            Box::new(|v| remove(v, &format!("{ITEM}/properties/kind"), "description")),
            "/components/schemas/Item/properties/kind",
            "neither a description nor `nullable`",
        ),
        (
            "allOf member with siblings",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{ITEM}/properties/kind/allOf/0"),
                    "description",
                    json!("d"),
                )
            }),
            "/components/schemas/Item/properties/kind/allOf/0/description",
            "not supported in an allOf member",
        ),
        (
            "$ref with siblings",
            e,
            Box::new(|v| {
                set(
                    v,
                    "/components/schemas/NewItem/properties/kind",
                    "description",
                    json!("d"),
                )
            }),
            "/components/schemas/NewItem/properties/kind",
            "cannot carry siblings",
        ),
        (
            "items on a string",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{ITEM}/properties/id"),
                    "items",
                    json!({"type": "string"}),
                )
            }),
            "/components/schemas/Item/properties/id/items",
            "only belongs to arrays",
        ),
        (
            "pattern without a hand-written type",
            e,
            Box::new(|v| set(v, &format!("{ITEM}/properties/id"), "pattern", json!("^i"))),
            "/components/schemas/Item/properties/id/pattern",
            "hand-written wire type",
        ),
        (
            "array without items",
            e,
            Box::new(|v| remove(v, &format!("{ITEM}/properties/labels"), "items")),
            "/components/schemas/Item/properties/labels",
            "needs `items`",
        ),
        (
            "nullable array items",
            e,
            Box::new(|v| {
                set(
                    v,
                    &format!("{ITEM}/properties/labels/items"),
                    "nullable",
                    json!(true),
                )
            }),
            "/components/schemas/Item/properties/labels/items",
            "cannot be nullable or described",
        ),
        (
            "unsupported type and format",
            e,
            Box::new(|v| set(v, &format!("{ITEM}/properties/id"), "format", json!("uuid"))),
            "/components/schemas/Item/properties/id",
            "format `uuid` is not supported",
        ),
        (
            "remote property reference",
            e,
            Box::new(|v| {
                set(
                    v,
                    "/components/schemas/NewItem/properties/kind",
                    "$ref",
                    json!("kinds.json#/Kind"),
                )
            }),
            "/components/schemas/NewItem/properties/kind/$ref",
            "not a local schema reference",
        ),
    ]
}

#[test]
fn each_refusal_names_its_pointer_and_what_to_write_instead() {
    let mut failures = Vec::new();
    for (name, base, mutate, pointer, words) in cases() {
        if words.is_empty() {
            continue;
        }
        let e = refusal(base, mutate);
        if e.pointer() != pointer || !e.message().contains(words) || e.hint().trim().is_empty() {
            failures.push(format!(
                "{name}: expected {pointer:?} with {words:?}, got {:?}: {} (hint: {})",
                e.pointer(),
                e.message(),
                e.hint()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusals_print_where_and_what_instead() {
    let e = refusal(EVERYTHING, |v| set(v, "", "openapi", json!("3.1.0")));
    let printed = e.to_string();
    assert!(printed.contains("at openapi.json#/openapi"), "{printed}");
    assert!(
        printed.contains("write instead: \"openapi\": \"3.0.3\""),
        "{printed}"
    );
}

#[test]
fn the_base_document_is_accepted() {
    generate(EVERYTHING, &config()).expect("the base document round-trips");
}

#[test]
fn a_configuration_that_names_no_rust_path_is_refused() {
    let mut bad = config();
    bad.types_module = "crate::not a path".into();
    let e = generate(EVERYTHING, &bad).unwrap_err();
    assert!(e.message().contains("is not a Rust path"), "{e}");
    let mut bad = config();
    bad.trait_name = "Two Words".into();
    let e = generate(EVERYTHING, &bad).unwrap_err();
    assert!(e.message().contains("not an identifier"), "{e}");
}

#[test]
fn examples_on_named_schemas_are_documentation_only() {
    let mut doc: Value = serde_json::from_str(EVERYTHING).unwrap();
    set(&mut doc, ITEM, "example", json!({"id": "item_1"}));
    set(
        &mut doc,
        "/components/schemas/Kind",
        "example",
        json!("Plain"),
    );
    let with = generate(&doc.to_string(), &config()).expect("examples are accepted");
    let without = generate(EVERYTHING, &config()).unwrap();
    assert_eq!(with, without, "an example changes no generated code");
}
