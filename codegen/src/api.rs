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
    let meta = info(doc)?;
    let tag_config = tags(doc)?;

    let mut methods = Vec::new();
    let mut support = Vec::new();
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
            let (m, s) = operation(doc, path, method, op, &ptr(&pointer, method), cfg)?;
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
    Ok(quote! {
        #meta

        #(#support)*

        #(#[doc = #trait_doc])*
        #[::dropshot::api_description { #tag_config }]
        pub trait #trait_name {
            type Context: Send + Sync + 'static;

            #(#methods)*
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
    let mut args = vec![quote! { rqctx: ::dropshot::RequestContext<Self::Context> }];
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
        args.push(quote! { #arg: #extractor<#name> });
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
        args.push(quote! { body: ::dropshot::TypedBody<#ty> });
    }

    let (response, error) = responses(doc, op, pointer, &type_base, &mut support, cfg)?;
    let attrs = quote! { #(#attr_parts),* };
    let method_tokens = quote! {
        #docs
        #[endpoint { #attrs }]
        async fn #fn_name(#(#args),*) -> ::std::result::Result<#response, #error>;
    };
    Ok((method_tokens, quote! { #(#support)* }))
}

/// The Rust type of `content.application/json.schema`, if there is content.
fn json_content(
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

/// The success response type (generated here) and the error type (named by the 4XX/5XX
/// response reference, implemented by hand in `src/problem.rs`).
fn responses(
    doc: &Value,
    op: &Value,
    pointer: &str,
    type_base: &str,
    support: &mut Vec<TokenStream>,
    cfg: &Config,
) -> Result<(TokenStream, TokenStream), GenError> {
    let rp = ptr(pointer, "responses");
    let responses = op
        .get("responses")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            GenError::new(
                &rp,
                "an operation needs `responses`",
                "one success status plus 4XX and 5XX",
            )
        })?;
    let mut success = None;
    let mut error_refs = Vec::new();
    for (code, response) in responses {
        let p = ptr(&rp, code);
        match code.as_str() {
            "4XX" | "5XX" => {
                only_keys(
                    response,
                    &p,
                    &["$ref"],
                    "an error response (dropshot emits a reference)",
                )?;
                error_refs.push(str_at(response, &p, "$ref")?.to_string());
            }
            c if c.len() == 3 && c.starts_with('2') => {
                if success.is_some() {
                    return Err(GenError::new(
                        &p,
                        "dropshot and progenitor allow one success status per operation",
                        "a single 2xx response",
                    ));
                }
                success = Some((c.to_string(), response, p));
            }
            _ => {
                return Err(GenError::new(
                    &p,
                    format!(
                        "response `{code}` cannot be expressed: dropshot documents errors only as 4XX/5XX ranges of one error type"
                    ),
                    "list the operation's problem types and statuses in its description; keep `4XX` and `5XX` pointing at #/components/responses/Problem",
                ));
            }
        }
    }
    let (code, response, p) =
        success.ok_or_else(|| GenError::new(&rp, "no success response", "one 2xx response"))?;

    if error_refs.len() != 2 || error_refs[0] != error_refs[1] {
        return Err(GenError::new(
            &rp,
            "4XX and 5XX must both refer to the same error response",
            "\"4XX\": {\"$ref\": \"#/components/responses/Problem\"}, and the same for 5XX",
        ));
    }
    let error_name = error_refs[0]
        .strip_prefix("#/components/responses/")
        .ok_or_else(|| {
            GenError::new(
                &ptr(&rp, "4XX"),
                "the error response must be a local response reference",
                "#/components/responses/Problem",
            )
        })?;
    let schema_of_error = doc
        .pointer(&format!(
            "{}/content/application~1json/schema/$ref",
            ptr("/components/responses", error_name)
        ))
        .and_then(Value::as_str);
    if schema_of_error != Some(&format!("#/components/schemas/{error_name}")) {
        return Err(GenError::new(
            &ptr("/components/responses", error_name),
            "dropshot names the error response after its schema",
            format!("content.application/json.schema.$ref = #/components/schemas/{error_name}"),
        ));
    }
    // dropshot's own `HttpError` documents itself as the `Error` schema and response; any other
    // error response names a generated schema, implemented by hand as a dropshot error type.
    let error_ty = if error_name == crate::types::DROPSHOT_ERROR {
        crate::types::check_dropshot_error_response(doc)?;
        quote! { ::dropshot::HttpError }
    } else {
        let module = crate::path_tokens(&cfg.types_module, "types module")?;
        let ident = format_ident!("{}", error_name);
        quote! { #module::#ident }
    };

    only_keys(
        response,
        &p,
        &["description", "content"],
        "a success response",
    )?;
    let description = str_at(response, &p, "description")?;
    // Success goes through dropshot's own coded response for its status; the contract's
    // description replaces dropshot's stock one in the metadata.
    let (variant, stock, status) = match code.as_str() {
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
    let name = format_ident!("{}Response", type_base);
    let doc = format!(
        "The outcome of `{type_base}`: {code} with its body, or a problem that needs response headers."
    );
    let variant_doc = format!("{code}: {description}");
    let problem = crate::path_tokens(&cfg.problem_with_headers, "problem type")?;
    let (stock_ty, success_field, success_result) = match json_content(response, &p, cfg)? {
        Some(_) if code == "204" => {
            return Err(GenError::new(
                &ptr(&p, "content"),
                "a 204 response has no content (dropshot's `HttpResponseDeleted` carries none)",
                "leave `content` out, or answer 200 with the body",
            ));
        }
        Some(body) => (
            quote! { #stock<#body> },
            quote! { (#body) },
            quote! { Self::#variant(body) => ::dropshot::HttpResponse::to_result(#stock(body)) },
        ),
        None if code == "204" => (
            quote! { #stock },
            quote! {},
            quote! { Self::#variant => ::dropshot::HttpResponse::to_result(#stock()) },
        ),
        None => {
            return Err(GenError::new(
                &p,
                "only a 204 response may have no content",
                "content.application/json.schema",
            ));
        }
    };
    support.push(quote! {
        #[doc = #doc]
        pub enum #name {
            #[doc = #variant_doc]
            #variant #success_field,
            /// A problem whose response carries headers (429 with Retry-After). dropshot's error
            /// path cannot set headers on a custom error body, so such problems travel here; they
            /// are documented by the 4XX/5XX error response all the same.
            Problem(#problem),
        }
        impl ::dropshot::HttpResponse for #name {
            fn to_result(self) -> ::std::result::Result<::http::Response<::dropshot::Body>, ::dropshot::HttpError> {
                match self {
                    #success_result,
                    Self::Problem(problem) => problem.into_response(),
                }
            }
            fn response_metadata() -> ::dropshot::ApiEndpointResponse {
                let mut metadata = <#stock_ty as ::dropshot::HttpResponse>::response_metadata();
                metadata.description = ::std::option::Option::Some(#description.to_string());
                metadata
            }
            fn status_code(&self) -> ::http::StatusCode {
                match self {
                    Self::Problem(problem) => problem.status(),
                    _ => ::http::StatusCode::#status,
                }
            }
        }
    });
    Ok((quote! { #name }, error_ty))
}
