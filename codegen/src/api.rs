//! `paths` -> one `#[dropshot::api_description]` trait, with a method per operation, the
//! extractor structs for its parameters, and a response type per operation that carries the
//! contract's own success status and description (dropshot's stock `HttpResponseOk` would say
//! "successful operation").

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

use crate::Config;
use crate::error::{GenError, only_keys, ptr, str_at};
use crate::names::{ident, is_plain, pascal, snake};
use crate::types::{field_type, schema_ref};

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];

pub fn generate(doc: &Value, cfg: &Config) -> Result<TokenStream, GenError> {
    only_keys(
        doc,
        "",
        &[
            "openapi",
            "info",
            "servers",
            "paths",
            "components",
            "security",
            "tags",
        ],
        "the document",
    )?;
    if doc.get("openapi").and_then(Value::as_str) != Some("3.0.3") {
        return Err(GenError::new(
            "/openapi",
            "the document must declare OpenAPI 3.0.3, the version dropshot emits",
            "\"openapi\": \"3.0.3\"",
        ));
    }
    if let Some(components) = doc.get("components") {
        only_keys(
            components,
            "/components",
            &["schemas", "responses", "securitySchemes"],
            "components",
        )?;
    }
    if doc.get("security").is_some() {
        return Err(GenError::new(
            "/security",
            "a document-wide security requirement cannot be told apart from the operations' own in the generated code",
            "state `security` on each operation instead",
        ));
    }
    let meta = info(doc)?;
    let tag_config = tags(doc)?;

    let mut methods = Vec::new();
    let mut support = Vec::new();
    let mut shared = crate::responses::Shared::default();
    let paths = doc.get("paths").and_then(Value::as_object).ok_or_else(|| {
        GenError::new("/paths", "the document needs `paths`", "an object of paths")
    })?;
    for (path, item) in paths {
        let pointer = ptr("/paths", path);
        only_keys(
            item,
            &pointer,
            METHODS,
            "a path item (path-level parameters are not supported)",
        )?;
        for (method, op) in item.as_object().into_iter().flatten() {
            let (m, s) = operation(
                doc,
                path,
                method,
                op,
                &ptr(&pointer, method),
                &mut shared,
                cfg,
            )?;
            methods.push(m);
            support.push(s);
        }
    }

    let trait_name = syn::parse_str::<syn::Ident>(&cfg.trait_name).map_err(|e| {
        GenError::new(
            "",
            format!(
                "the configured trait name `{}` is not an identifier: {e}",
                cfg.trait_name
            ),
            "a PascalCase name",
        )
    })?;
    let trait_doc = cfg.trait_doc.lines().map(|l| format!(" {l}"));
    let shared_support = crate::responses::support(&shared, cfg)?;
    Ok(quote! {
        #meta

        #shared_support

        #(#support)*

        #(#[doc = #trait_doc])*
        #[::dropshot::api_description { #tag_config }]
        pub trait #trait_name {
            type Context: Send + Sync + 'static;

            #(#methods)*

            /// Called once per request of every operation, refused or not, with the status it
            /// is answered with and when its inputs had been read (for metrics); does nothing
            /// unless the implementation provides it.
            fn observe(
                _context: &Self::Context,
                _operation_id: &'static str,
                _status: ::http::StatusCode,
                _started: ::std::time::Instant,
            ) {
            }
        }
    })
}

fn info(doc: &Value) -> Result<TokenStream, GenError> {
    let info = doc
        .get("info")
        .ok_or_else(|| GenError::new("/info", "the document needs `info`", "title and version"))?;
    only_keys(
        info,
        "/info",
        &[
            "title",
            "description",
            "termsOfService",
            "contact",
            "license",
            "version",
        ],
        "info (dropshot emits only these here)",
    )?;
    let title = str_at(info, "/info", "title")?;
    let version = str_at(info, "/info", "version")?;
    let parts: Vec<u64> = version.split('.').filter_map(|p| p.parse().ok()).collect();
    if parts.len() != 3 || version.split('.').count() != 3 {
        return Err(GenError::new(
            "/info/version",
            format!("`{version}` is not a plain semantic version"),
            "MAJOR.MINOR.PATCH, e.g. 1.2.0",
        ));
    }
    let (major, minor, patch) = (parts[0], parts[1], parts[2]);
    // Each of these becomes a call on dropshot's `OpenApiDefinition`, which writes it back.
    let mut setters = Vec::new();
    if let Some(d) = info.get("description") {
        let d = d.as_str().ok_or_else(|| {
            GenError::new(
                "/info/description",
                "`description` must be a string",
                "a string",
            )
        })?;
        setters.push(quote! { def.description(#d); });
    }
    if info.get("termsOfService").is_some() {
        let t = str_at(info, "/info", "termsOfService")?;
        setters.push(quote! { def.terms_of_service(#t); });
    }
    if let Some(contact) = info.get("contact") {
        only_keys(
            contact,
            "/info/contact",
            &["name", "url", "email"],
            "a contact",
        )?;
        for (key, setter) in [
            ("name", quote! { contact_name }),
            ("url", quote! { contact_url }),
            ("email", quote! { contact_email }),
        ] {
            if contact.get(key).is_some() {
                let v = str_at(contact, "/info/contact", key)?;
                setters.push(quote! { def.#setter(#v); });
            }
        }
    }
    if let Some(license) = info.get("license") {
        only_keys(license, "/info/license", &["name", "url"], "a license")?;
        let name = str_at(license, "/info/license", "name")?;
        if license.get("url").is_some() {
            let url = str_at(license, "/info/license", "url")?;
            setters.push(quote! { def.license(#name, #url); });
        } else {
            setters.push(quote! { def.license_name(#name); });
        }
    }
    let definition = if setters.is_empty() {
        quote! { api.openapi(API_TITLE, ::semver::Version::new(#major, #minor, #patch)) }
    } else {
        quote! {
            let mut def = api.openapi(API_TITLE, ::semver::Version::new(#major, #minor, #patch));
            #(#setters)*
            def
        }
    };
    Ok(quote! {
        /// `info.title` of the contract.
        pub const API_TITLE: &str = #title;
        /// `info.version` of the contract.
        pub const API_VERSION: &str = #version;

        /// The OpenAPI document of an API description, with the contract's `info`.
        pub fn openapi_definition<C: ::dropshot::ServerContext>(
            api: &::dropshot::ApiDescription<C>,
        ) -> ::dropshot::OpenApiDefinition<'_, C> {
            #definition
        }
    })
}

fn tags(doc: &Value) -> Result<TokenStream, GenError> {
    let Some(tags) = doc.get("tags") else {
        return Ok(quote! {});
    };
    let tags = tags.as_array().ok_or_else(|| {
        GenError::new(
            "/tags",
            "`tags` must be an array",
            "[{\"name\": ..., \"description\": ...}]",
        )
    })?;
    let mut entries = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        let p = ptr("/tags", i);
        only_keys(tag, &p, &["name", "description"], "a tag")?;
        let name = str_at(tag, &p, "name")?;
        let description = match tag.get("description").and_then(Value::as_str) {
            Some(d) => quote! { description = #d },
            None => quote! {},
        };
        entries.push(quote! { #name = { #description } });
    }
    Ok(quote! {
        tag_config = {
            allow_other_tags = true,
            tags = { #(#entries),* }
        }
    })
}

/// Doc comments that dropshot turns back into exactly this summary and description.
///
/// dropshot takes the first line as the summary and folds the rest, joining lines with spaces and
/// blank lines into paragraph breaks; so a description can hold paragraphs but no single line
/// breaks, and a paragraph may not end in `-` (dropshot would glue the next one onto it).
fn endpoint_docs(op: &Value, pointer: &str) -> Result<TokenStream, GenError> {
    let Some(summary) = op.get("summary") else {
        // An endpoint without doc comments: dropshot writes neither a summary nor a description.
        if op.get("description").is_some() {
            return Err(GenError::new(
                &ptr(pointer, "description"),
                "dropshot takes the first doc line as the summary, so a description never stands without one",
                "a one-line `summary` before the description",
            ));
        }
        return Ok(quote! {});
    };
    let summary = summary.as_str().ok_or_else(|| {
        GenError::new(
            &ptr(pointer, "summary"),
            "`summary` must be a string",
            "a string",
        )
    })?;
    if summary.contains('\n') || summary.trim() != summary || summary.is_empty() {
        return Err(GenError::new(
            &ptr(pointer, "summary"),
            "a summary must be one trimmed line",
            "a single line",
        ));
    }
    let mut lines = vec![summary.to_string()];
    if let Some(description) = op.get("description").and_then(Value::as_str) {
        for para in description.split("\n\n") {
            if para.is_empty() || para.contains('\n') || para.trim() != para || para.ends_with('-')
            {
                return Err(GenError::new(
                    &ptr(pointer, "description"),
                    format!(
                        "this paragraph cannot survive dropshot's doc-comment folding: {para:?}"
                    ),
                    "paragraphs separated by one blank line, each a single trimmed line not ending in `-` (list items as separate paragraphs)",
                ));
            }
            lines.push(String::new());
            lines.push(para.to_string());
        }
    }
    let lines = lines.iter().map(|l| {
        if l.is_empty() {
            String::new()
        } else {
            format!(" {l}")
        }
    });
    Ok(quote! { #(#[doc = #lines])* })
}

fn operation(
    doc: &Value,
    path: &str,
    method: &str,
    op: &Value,
    pointer: &str,
    shared: &mut crate::responses::Shared,
    cfg: &Config,
) -> Result<(TokenStream, TokenStream), GenError> {
    only_keys(
        op,
        pointer,
        &[
            "tags",
            "summary",
            "description",
            "operationId",
            "parameters",
            "requestBody",
            "responses",
            "security",
            "deprecated",
        ],
        "an operation",
    )?;
    let operation_id = str_at(op, pointer, "operationId")?;
    if !is_plain(operation_id) || operation_id.contains([' ', '-']) {
        return Err(GenError::new(
            &ptr(pointer, "operationId"),
            format!("`{operation_id}` cannot name a Rust method"),
            "a camelCase operationId such as `resendBusinessInvitation`",
        ));
    }
    let fn_name = ident(&snake(operation_id));
    let type_base = pascal(operation_id);
    let docs = endpoint_docs(op, pointer)?;

    let mut attr_parts = vec![
        {
            let m = format_ident!("{}", method.to_uppercase());
            quote! { method = #m }
        },
        quote! { path = #path },
        quote! { operation_id = #operation_id },
    ];
    if let Some(tags) = op.get("tags") {
        let tags: Vec<&str> = tags
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        attr_parts.push(quote! { tags = [#(#tags),*] });
    }
    match op.get("deprecated") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => attr_parts.push(quote! { deprecated = true }),
        Some(_) => {
            return Err(GenError::new(
                &ptr(pointer, "deprecated"),
                "`deprecated` must be a boolean",
                "true",
            ));
        }
    }

    // Parameters, grouped into one extractor struct per location, in the order dropshot emits
    // them: path, query, header.
    // Each group: its location, its struct's suffix, its fields, and constants stating the
    // contract's bounds so that code checking them needs no copy of the numbers.
    type Group<'a> = (&'a str, &'a str, Vec<TokenStream>, Vec<TokenStream>);
    let mut groups: Vec<Group> = vec![
        ("path", "Path", vec![], vec![]),
        ("query", "Query", vec![], vec![]),
        ("header", "Headers", vec![], vec![]),
    ];
    for (i, param) in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = ptr(&ptr(pointer, "parameters"), i);
        only_keys(
            param,
            &p,
            &["in", "name", "description", "required", "schema"],
            "a parameter",
        )?;
        let location = str_at(param, &p, "in")?;
        let name = str_at(param, &p, "name")?;
        if !is_plain(name) {
            return Err(GenError::new(
                &ptr(&p, "name"),
                format!("parameter `{name}` cannot become a Rust field"),
                "letters, digits, `-` and `_`",
            ));
        }
        let required = param
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if location == "path" && !required {
            return Err(GenError::new(
                &ptr(&p, "required"),
                "path parameters are always required",
                "\"required\": true",
            ));
        }
        let schema = param.get("schema").ok_or_else(|| {
            GenError::new(
                &p,
                "a parameter needs a `schema`",
                "\"schema\": {\"type\": \"string\"}",
            )
        })?;
        if schema.get("description").is_some() {
            return Err(GenError::new(
                &ptr(&ptr(&p, "schema"), "description"),
                "a parameter's schema carries no description in dropshot's dialect",
                "put the description on the parameter itself",
            ));
        }
        // dropshot writes an optional (`Option<T>`) query parameter's schema as nullable, and an
        // optional header's without; a required parameter's never.
        let nullable = crate::types::nullable(schema, &ptr(&p, "schema"))?;
        match (location, required, nullable) {
            (_, true, true) => {
                return Err(GenError::new(
                    &ptr(&ptr(&p, "schema"), "nullable"),
                    "a required parameter is never nullable in the dialect dropshot emits",
                    "leave `nullable` out, or leave `required` out to make the parameter optional",
                ));
            }
            ("query", false, false) => {
                return Err(GenError::new(
                    &ptr(&p, "schema"),
                    "dropshot writes an optional query parameter's schema with `\"nullable\": true`",
                    "`\"nullable\": true` in the parameter's schema (and no `required`)",
                ));
            }
            ("header", false, true) => {
                return Err(GenError::new(
                    &ptr(&ptr(&p, "schema"), "nullable"),
                    "dropshot writes an optional header's schema without `nullable`",
                    "leave `nullable` out of the schema (and `required` out of the parameter)",
                ));
            }
            _ => {}
        }
        let mut plain = schema.clone();
        if let Some(o) = plain.as_object_mut() {
            o.shift_remove("nullable");
        }
        let ft = field_type(&plain, &ptr(&p, "schema"), cfg)?;
        let ty = ft.ty;
        let attrs = ft.attrs;
        let ty = if required {
            ty
        } else {
            quote! { ::std::option::Option<#ty> }
        };
        let field = ident(&snake(name));
        let description = param.get("description").and_then(Value::as_str);
        let docs = match description {
            Some(d) => quote! { #[doc = #d] #[schemars(description = #d)] },
            None => quote! {},
        };
        let group = groups
            .iter_mut()
            .find(|(loc, _, _, _)| *loc == location)
            .ok_or_else(|| {
                GenError::new(
                    &ptr(&p, "in"),
                    format!("parameters in `{location}` are not supported"),
                    "path, query or header",
                )
            })?;
        group
            .2
            .push(quote! { #docs #attrs #[serde(rename = #name)] pub #field: #ty, });
        group.3.extend(crate::types::length_consts(&plain, name));
    }

    let mut support = Vec::new();
    // The endpoint dropshot registers takes every input through an extractor wrapper that never
    // fails, so that a refusal becomes one of the operation's declared responses; it then
    // calls the method the implementation writes, which receives the inputs already parsed.
    let mut endpoint_args = vec![quote! { rqctx: ::dropshot::RequestContext<Self::Context> }];
    let mut unpack = Vec::new();
    let mut method_args = vec![quote! { rqctx: ::dropshot::RequestContext<Self::Context> }];
    let mut call_args = vec![quote! { rqctx }];
    let scheme = security(doc, op, pointer, cfg)?;
    if let Some((_, extractor)) = &scheme {
        endpoint_args.push(quote! { caller: Checked<#extractor> });
        unpack.push(quote! {
            let caller = match caller.0 {
                ::std::result::Result::Ok(v) => v,
                ::std::result::Result::Err(r) => break 'answered reject(&rqctx.log, r),
            };
        });
        method_args.push(quote! { caller: #extractor });
        call_args.push(quote! { caller });
    }
    let secured = method_args.len() > 1;
    for (location, suffix, fields, consts) in groups {
        if fields.is_empty() {
            continue;
        }
        let name = format_ident!("{}{}", type_base, suffix);
        let arg = format_ident!("{}", location);
        let extractor = match location {
            "path" => quote! { ::dropshot::Path },
            "query" => quote! { ::dropshot::Query },
            _ => quote! { ::dropshot::Header },
        };
        let doc = format!("The {location} parameters of `{operation_id}`.");
        support.push(quote! {
            #[derive(Clone, Debug, ::serde::Deserialize, ::serde::Serialize, ::schemars::JsonSchema)]
            #[doc = #doc]
            pub struct #name { #(#fields)* }
        });
        if !consts.is_empty() {
            support.push(quote! { impl #name { #(#consts)* } });
        }
        endpoint_args.push(quote! { #arg: Checked<#extractor<#name>> });
        unpack.push(quote! {
            let #arg = match #arg.0 {
                ::std::result::Result::Ok(v) => v.into_inner(),
                ::std::result::Result::Err(r) => break 'answered reject(&rqctx.log, r),
            };
        });
        method_args.push(quote! { #arg: #name });
        call_args.push(quote! { #arg });
    }

    if let Some(body) = op.get("requestBody") {
        let p = ptr(pointer, "requestBody");
        only_keys(body, &p, &["content", "required"], "a request body")?;
        if body.get("required") != Some(&Value::Bool(true)) {
            return Err(GenError::new(
                &p,
                "dropshot request bodies are always required",
                "\"required\": true",
            ));
        }
        let ty = json_content(body, &p, cfg)?.ok_or_else(|| {
            GenError::new(
                &p,
                "a request body needs JSON content",
                "content.application/json.schema",
            )
        })?;
        endpoint_args.push(quote! { body: CheckedBody<::dropshot::TypedBody<#ty>> });
        unpack.push(quote! {
            let body = match body.0 {
                ::std::result::Result::Ok(v) => v.into_inner(),
                ::std::result::Result::Err(r) => break 'answered reject(&rqctx.log, r),
            };
        });
        method_args.push(quote! { body: #ty });
        call_args.push(quote! { body });
    }

    let has_inputs = method_args.len() > 1 + usize::from(secured);
    let responses = crate::responses::generate(
        op,
        path,
        method,
        scheme.map(|(s, _)| s),
        pointer,
        &type_base,
        crate::responses::Needs {
            bad_request: has_inputs,
            unauthorized: secured,
            body: op.get("requestBody").is_some(),
        },
        shared,
        cfg,
    )?;
    support.push(responses.tokens);
    let response = responses.name;
    let attrs = quote! { #(#attr_parts),* };
    let endpoint_fn = format_ident!("{}_endpoint", snake(operation_id));
    let method_doc = format!(
        "Implements `{operation_id}`: receives its inputs parsed (a request whose inputs are refused never gets here; it is answered with the declared 400 or 401) and answers one of its declared responses; the endpoint then ties its problem, if any, to the request and to the response's status."
    );
    let method_tokens = quote! {
        #docs
        #[endpoint { #attrs }]
        async fn #endpoint_fn(#(#endpoint_args),*) -> ::std::result::Result<#response, ErrorBody> {
            let started = ::std::time::Instant::now();
            let server = ::std::sync::Arc::clone(&rqctx.server);
            let response: #response = 'answered: {
                #(#unpack)*
                let request_id = rqctx.request_id.clone();
                let uri = rqctx.request.uri().clone();
                let mut response = Self::#fn_name(#(#call_args),*).await;
                answer(&mut response, &request_id, uri.path());
                response
            };
            Self::observe(&server.private, #operation_id, OperationResponse::status(&response), started);
            ::std::result::Result::Ok(response)
        }

        #[doc = #method_doc]
        fn #fn_name(#(#method_args),*) -> impl ::std::future::Future<Output = #response> + Send + 'static;
    };
    Ok((method_tokens, quote! { #(#support)* }))
}

/// The security scheme an operation requires and the extractor that authenticates its caller,
/// or `None` for an operation that requires none. Every operation states its `security`, so
/// that the document the code describes can write it back from the operation's arguments.
fn security(
    doc: &Value,
    op: &Value,
    pointer: &str,
    cfg: &Config,
) -> Result<Option<(String, TokenStream)>, GenError> {
    let at = ptr(pointer, "security");
    let requirements = op.get("security").ok_or_else(|| {
        GenError::new(
            pointer,
            "every operation states its security requirement: the generated method receives the authenticated caller exactly when it has one",
            "\"security\": [{\"bearerAuth\": []}], or \"security\": [] for an operation that takes no credential",
        )
    })?;
    let requirements = requirements.as_array().ok_or_else(|| {
        GenError::new(&at, "`security` must be an array", "[{\"bearerAuth\": []}]")
    })?;
    match requirements.as_slice() {
        [] => Ok(None),
        [one] => {
            let schemes = one.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
                GenError::new(
                    &ptr(&at, 0),
                    "a security requirement names exactly one scheme here",
                    "{\"bearerAuth\": []}",
                )
            })?;
            let (scheme, scopes) = schemes.iter().next().expect("one entry");
            if scopes.as_array().is_none_or(|s| !s.is_empty()) {
                return Err(GenError::new(
                    &ptr(&ptr(&at, 0), scheme),
                    "scopes are not supported",
                    "[]",
                ));
            }
            let declared = doc
                .pointer(&ptr("/components/securitySchemes", scheme))
                .ok_or_else(|| {
                    GenError::new(
                        &ptr(&ptr(&at, 0), scheme),
                        format!("no security scheme `{scheme}` under components/securitySchemes"),
                        "declare the scheme, or name one that is declared",
                    )
                })?;
            let configured = cfg
                .security
                .iter()
                .find(|s| s.scheme == *scheme)
                .ok_or_else(|| {
                    GenError::new(
                        &ptr(&ptr(&at, 0), scheme),
                        format!("no extractor is configured for the security scheme `{scheme}`"),
                        "configure one (`security` in the generator's configuration, set in build.rs): the type that authenticates the caller",
                    )
                })?;
            // The configured extractor reads `Authorization: Bearer`; a scheme that says
            // otherwise would document a credential the server does not take.
            let bearer = declared.get("type").and_then(Value::as_str) == Some("http")
                && declared
                    .get("scheme")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case("bearer"));
            if !bearer {
                return Err(GenError::new(
                    &ptr("/components/securitySchemes", scheme),
                    "the extractors this generator is configured with read an HTTP bearer token, and this scheme is not one",
                    "\"type\": \"http\", \"scheme\": \"bearer\"",
                ));
            }
            Ok(Some((
                scheme.clone(),
                crate::path_tokens(&configured.extractor, "security extractor")?,
            )))
        }
        _ => Err(GenError::new(
            &at,
            "alternative security requirements are not supported",
            "one requirement, such as [{\"bearerAuth\": []}]",
        )),
    }
}

/// The Rust type of `content.application/json.schema`, if there is content.
pub(crate) fn json_content(
    container: &Value,
    pointer: &str,
    cfg: &Config,
) -> Result<Option<TokenStream>, GenError> {
    let Some(content) = container.get("content") else {
        return Ok(None);
    };
    let cp = ptr(pointer, "content");
    only_keys(
        content,
        &cp,
        &["application/json"],
        "content (dropshot speaks JSON only here)",
    )?;
    let mp = ptr(&cp, "application/json");
    let media = content
        .get("application/json")
        .ok_or_else(|| GenError::new(&cp, "content needs application/json", "application/json"))?;
    only_keys(media, &mp, &["schema"], "a media type")?;
    let sp = ptr(&mp, "schema");
    let schema = media
        .get("schema")
        .ok_or_else(|| GenError::new(&mp, "a media type needs a schema", "a `$ref`"))?;
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        only_keys(schema, &sp, &["$ref"], "a body schema")?;
        return Ok(Some(schema_ref(r, &sp, cfg)?));
    }
    // A top-level array: schemars names it `Array_of_<Item>` and dropshot writes that name as
    // the schema's title.
    only_keys(
        schema,
        &sp,
        &["title", "type", "items"],
        "a body schema (a `$ref`, or an array of a `$ref`)",
    )?;
    if schema.get("type").and_then(Value::as_str) != Some("array") {
        return Err(GenError::new(
            &sp,
            "a body must be a `$ref` or an array of `$ref`",
            "name the schema under components/schemas",
        ));
    }
    let items = schema
        .get("items")
        .and_then(|i| i.get("$ref"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            GenError::new(
                &ptr(&sp, "items"),
                "array items must be a `$ref`",
                "`{\"$ref\": \"#/components/schemas/Name\"}`",
            )
        })?;
    let item_name = items.rsplit('/').next().unwrap_or_default();
    let title = format!("Array_of_{item_name}");
    if schema.get("title").and_then(Value::as_str) != Some(title.as_str()) {
        return Err(GenError::new(
            &ptr(&sp, "title"),
            "dropshot titles an array body after its item type",
            format!("\"title\": \"{title}\""),
        ));
    }
    let item = schema_ref(items, &ptr(&sp, "items"), cfg)?;
    Ok(Some(quote! { ::std::vec::Vec<#item> }))
}
