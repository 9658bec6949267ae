//! `components/schemas` -> Rust wire types deriving serde and `schemars::JsonSchema`.
//!
//! Every attribute is chosen so that schemars 0.8 (through dropshot) emits the schema it came
//! from: descriptions go through `#[schemars(description)]` rather than doc comments, because
//! schemars reflows doc comments; nullable means `Option` and not required; a described `$ref`
//! is the `allOf: [$ref]` wrapper schemars writes for it.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

use crate::Config;
use crate::error::{GenError, only_keys, ptr, str_at};
use crate::names::{ident, is_plain, pascal, snake};

/// The Rust type of a schema used in a property or parameter, plus the field attributes it needs
/// and whether it is nullable.
pub struct FieldType {
    pub ty: TokenStream,
    pub attrs: TokenStream,
    pub nullable: bool,
    pub description: Option<String>,
}

pub fn generate(doc: &Value, cfg: &Config) -> Result<TokenStream, GenError> {
    let mut items = Vec::new();
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object);
    for (name, schema) in schemas.into_iter().flatten() {
        let pointer = ptr("/components/schemas", name);
        if !is_plain(name) || name.contains([' ', '-']) {
            return Err(GenError::new(
                &pointer,
                format!("schema name `{name}` is not a Rust type name"),
                "a PascalCase name such as `BusinessInvitation`",
            ));
        }
        let kind = schema.get("type").and_then(Value::as_str);
        let item = match (kind, schema.get("enum")) {
            (Some("object"), _) => object(name, schema, &pointer, cfg)?,
            (Some("string"), Some(_)) => string_enum(name, schema, &pointer)?,
            _ => {
                return Err(GenError::new(
                    &pointer,
                    "only objects and string enums can be named schemas",
                    "an object with `properties`, or `{\"type\": \"string\", \"enum\": [...]}`; constrained strings belong inline in a property",
                ));
            }
        };
        items.push(item);
    }
    Ok(quote! { #(#items)* })
}

fn description_attrs(description: Option<&str>) -> TokenStream {
    match description {
        Some(d) => quote! { #[doc = #d] #[schemars(description = #d)] },
        None => quote! {},
    }
}

fn object(
    name: &str,
    schema: &Value,
    pointer: &str,
    cfg: &Config,
) -> Result<TokenStream, GenError> {
    only_keys(
        schema,
        pointer,
        // `example` is for readers of the document; dropshot emits none, and the drift check
        // lists examples as what the code cannot say.
        &[
            "description",
            "type",
            "properties",
            "required",
            "additionalProperties",
            "example",
        ],
        "an object schema",
    )?;
    let description = schema.get("description").and_then(Value::as_str);
    // `additionalProperties: false` is what schemars writes for `deny_unknown_fields`: a body
    // with a property the schema does not name is refused, the name in the message.
    let closed = match schema.get("additionalProperties") {
        None => false,
        Some(Value::Bool(false)) => true,
        Some(_) => {
            return Err(GenError::new(
                &ptr(pointer, "additionalProperties"),
                "an object with properties accepts no others, or says nothing about them",
                "\"additionalProperties\": false, or leave it out",
            ));
        }
    };
    let deny = closed.then(|| quote! { #[serde(deny_unknown_fields)] });
    let required: Vec<&str> = match schema.get("required") {
        None => Vec::new(),
        Some(Value::Array(r)) => r.iter().filter_map(Value::as_str).collect(),
        Some(_) => {
            return Err(GenError::new(
                &ptr(pointer, "required"),
                "`required` must be an array of names",
                "[\"name\", ...]",
            ));
        }
    };
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            GenError::new(
                pointer,
                "an object schema needs `properties`",
                "list the properties",
            )
        })?;
    for r in &required {
        if !props.contains_key(*r) {
            return Err(GenError::new(
                &ptr(pointer, "required"),
                format!("`{r}` is required but not a property"),
                "remove it or add the property",
            ));
        }
    }

    let mut fields = Vec::new();
    let mut consts = Vec::new();
    for (prop, prop_schema) in props {
        let p = ptr(&ptr(pointer, "properties"), prop);
        if !is_plain(prop) {
            return Err(GenError::new(
                &p,
                format!("property `{prop}` cannot become a Rust field"),
                "a camelCase name",
            ));
        }
        let ft = field_type(prop_schema, &p, cfg)?;
        let is_required = required.contains(&prop.as_str());
        if ft.nullable && is_required {
            return Err(GenError::new(
                &p,
                "a required property cannot be nullable in the dialect dropshot emits",
                "either `\"nullable\": true` and not in `required`, or not nullable and in `required`",
            ));
        }
        consts.extend(length_consts(prop_schema, prop));
        let field = ident(&snake(prop));
        let nullable = ft.nullable;
        let FieldType { ty, mut attrs, .. } = ft;
        // Optional but not nullable: absent rather than null. schemars writes an `Option<T>`
        // as nullable, so the field's schema is taken from `T`, and `default` keeps it out of
        // `required`.
        let ty = if !is_required && !nullable {
            let ty_text = ty.to_string().replace(" ", "");
            attrs = quote! {
                #attrs
                #[serde(default, skip_serializing_if = "::std::option::Option::is_none")]
                #[schemars(with = #ty_text)]
            };
            quote! { ::std::option::Option<#ty> }
        } else {
            ty
        };
        let docs = description_attrs(prop_schema.get("description").and_then(Value::as_str));
        fields.push(quote! {
            #docs
            #attrs
            #[serde(rename = #prop)]
            pub #field: #ty,
        });
    }

    let ident = format_ident!("{}", name);
    let docs = description_attrs(description);
    let bounds = if consts.is_empty() {
        quote! {}
    } else {
        quote! { impl #ident { #(#consts)* } }
    };
    Ok(quote! {
        #[derive(Clone, Debug, PartialEq, ::serde::Deserialize, ::serde::Serialize, ::schemars::JsonSchema)]
        #docs
        #deny
        pub struct #ident {
            #(#fields)*
        }
        #bounds
    })
}

fn string_enum(name: &str, schema: &Value, pointer: &str) -> Result<TokenStream, GenError> {
    only_keys(
        schema,
        pointer,
        &["description", "type", "enum", "example"],
        "a string enum schema",
    )?;
    let values = schema
        .get("enum")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            GenError::new(
                &ptr(pointer, "enum"),
                "`enum` must be an array",
                "[\"Value\", ...]",
            )
        })?;
    let mut variants = Vec::new();
    let mut arms = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let s = v.as_str().ok_or_else(|| {
            GenError::new(
                &ptr(&ptr(pointer, "enum"), i),
                "enum values must be strings",
                "a string",
            )
        })?;
        if !is_plain(s) {
            return Err(GenError::new(
                &ptr(&ptr(pointer, "enum"), i),
                format!("enum value `{s}` cannot become a Rust variant"),
                "letters, digits, spaces, `-` and `_`, starting with a letter",
            ));
        }
        let variant = format_ident!("{}", pascal(s));
        variants.push(quote! { #[serde(rename = #s)] #variant, });
        arms.push(quote! { Self::#variant => #s, });
    }
    let ident = format_ident!("{}", name);
    let docs = description_attrs(schema.get("description").and_then(Value::as_str));
    Ok(quote! {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ::serde::Deserialize, ::serde::Serialize, ::schemars::JsonSchema)]
        #docs
        pub enum #ident {
            #(#variants)*
        }

        impl #ident {
            /// The value exactly as the contract spells it.
            pub const fn as_str(&self) -> &'static str {
                match self { #(#arms)* }
            }
        }

        impl ::std::fmt::Display for #ident {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    })
}

/// The Rust type for a property or parameter schema.
pub fn field_type(schema: &Value, pointer: &str, cfg: &Config) -> Result<FieldType, GenError> {
    only_keys(
        schema,
        pointer,
        &[
            "nullable",
            "description",
            "type",
            "format",
            "pattern",
            "minLength",
            "maxLength",
            "allOf",
            "$ref",
            "items",
        ],
        "a property schema",
    )?;
    let length = |key: &str| -> Result<Option<u64>, GenError> {
        match schema.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                GenError::new(
                    &ptr(pointer, key),
                    format!("`{key}` must be a whole number"),
                    "e.g. 255",
                )
            }),
        }
    };
    let (min_length, max_length) = (length("minLength")?, length("maxLength")?);
    let has_length = min_length.is_some() || max_length.is_some();
    // A hand-written type states its own bounds; the round-trip test holds it to the contract.
    let written_by_hand = hand_written(cfg, schema);
    if has_length
        && written_by_hand.is_none()
        && (schema.get("type").and_then(Value::as_str) != Some("string")
            || schema.get("format").is_some())
    {
        let key = if min_length.is_some() {
            "minLength"
        } else {
            "maxLength"
        };
        return Err(GenError::new(
            &ptr(pointer, key),
            format!("`{key}` is supported on plain strings only (no format, no $ref)"),
            "drop it, or put the bound in the description and check it in the handler",
        ));
    }
    let nullable = nullable(schema, pointer)?;
    let description = schema
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut attrs = quote! {};

    let ty = if let Some(all_of) = schema.get("allOf") {
        let one = all_of.as_array().filter(|a| a.len() == 1).ok_or_else(|| {
            GenError::new(&ptr(pointer, "allOf"), "only a single-element `allOf` is supported (the wrapper schemars writes around a described `$ref`)", "`\"allOf\": [{\"$ref\": \"#/components/schemas/Name\"}]`")
        })?;
        // schemars wraps a `$ref` in `allOf` to give it a description or `nullable` (for an
        // `Option<Named>`), and writes a bare `$ref` otherwise.
        if description.is_none() && !nullable {
            return Err(GenError::new(
                pointer,
                "an `allOf` wrapper with neither a description nor `nullable` is not what schemars emits",
                "a bare `$ref`",
            ));
        }
        only_keys(
            &one[0],
            &ptr(&ptr(pointer, "allOf"), 0),
            &["$ref"],
            "an allOf member",
        )?;
        reference(&one[0], &ptr(&ptr(pointer, "allOf"), 0), cfg)?
    } else if schema.get("$ref").is_some() {
        if schema.as_object().is_some_and(|o| o.len() > 1) {
            return Err(GenError::new(
                pointer,
                "a `$ref` cannot carry siblings in OpenAPI 3.0",
                "wrap it: `{\"description\": ..., \"allOf\": [{\"$ref\": ...}]}`",
            ));
        }
        reference(schema, pointer, cfg)?
    } else {
        let kind = str_at(schema, pointer, "type")?;
        let format = schema.get("format").and_then(Value::as_str);
        let pattern = schema.get("pattern");
        if schema.get("items").is_some() && kind != "array" {
            return Err(GenError::new(
                &ptr(pointer, "items"),
                "`items` only belongs to arrays",
                "remove it",
            ));
        }
        match (kind, format) {
            _ if written_by_hand.is_some() => {
                let path = &written_by_hand.expect("checked").path;
                crate::path_tokens(path, "hand-written type")?
            }
            _ if pattern.is_some() => {
                return Err(GenError::new(
                    &ptr(pointer, "pattern"),
                    "a `pattern` needs a hand-written wire type: a derived newtype would lose it",
                    "a hand-written type with a manual `JsonSchema` impl carrying the pattern, registered by its type and format in the generator's configuration (`hand_written`, set in build.rs)",
                ));
            }
            ("string", None) => {
                // schemars writes `length(...)` as minLength/maxLength on the string itself.
                let bounds: Vec<proc_macro2::TokenStream> =
                    [("min", min_length), ("max", max_length)]
                        .into_iter()
                        .filter_map(|(k, v)| {
                            v.map(|v| {
                                let k = format_ident!("{}", k);
                                quote! { #k = #v }
                            })
                        })
                        .collect();
                if !bounds.is_empty() {
                    attrs = quote! { #[schemars(length(#(#bounds),*))] };
                }
                quote! { ::std::string::String }
            }
            ("string", Some("date-time")) => quote! { ::chrono::DateTime<::chrono::Utc> },
            ("string", Some("email")) => {
                attrs = quote! { #[schemars(email)] };
                quote! { ::std::string::String }
            }
            ("string", Some("uri")) => {
                attrs = quote! { #[schemars(url)] };
                quote! { ::std::string::String }
            }
            ("integer", Some("int32")) => quote! { i32 },
            ("integer", Some("int64")) => quote! { i64 },
            ("boolean", None) => quote! { bool },
            ("array", None) => {
                let items = schema.get("items").ok_or_else(|| {
                    GenError::new(pointer, "an array needs `items`", "`\"items\": {...}`")
                })?;
                let inner = field_type(items, &ptr(pointer, "items"), cfg)?;
                if inner.nullable || inner.description.is_some() {
                    return Err(GenError::new(
                        &ptr(pointer, "items"),
                        "array items cannot be nullable or described here",
                        "a plain item schema",
                    ));
                }
                let t = inner.ty;
                quote! { ::std::vec::Vec<#t> }
            }
            (k, f) => {
                return Err(GenError::new(
                    pointer,
                    format!(
                        "type `{k}` with format `{}` is not supported",
                        f.unwrap_or("(none)")
                    ),
                    "string (no format, date-time, email, uri, or a hand-written format), integer (int32, int64), boolean, array, or a $ref",
                ));
            }
        }
    };
    let ty = if nullable {
        quote! { ::std::option::Option<#ty> }
    } else {
        ty
    };
    Ok(FieldType {
        ty,
        attrs,
        nullable,
        description,
    })
}

/// Constants stating a schema's `minLength` and `maxLength` (in characters) under the name of the
/// field or parameter it belongs to, so that code checking them holds no copy of the numbers.
/// `field_type` has checked that each bound is a whole number.
pub fn length_consts(schema: &Value, name: &str) -> Vec<TokenStream> {
    [("minLength", "MIN_LENGTH"), ("maxLength", "MAX_LENGTH")]
        .into_iter()
        .filter_map(|(key, suffix)| {
            let bound = schema.get(key).and_then(Value::as_u64)? as usize;
            let konst = format_ident!("{}_{}", snake(name).to_uppercase(), suffix);
            let doc = format!("`{key}` of `{name}`, in characters.");
            Some(quote! { #[doc = #doc] pub const #konst: usize = #bound; })
        })
        .collect()
}

/// Whether a schema says `"nullable": true`.
pub fn nullable(schema: &Value, pointer: &str) -> Result<bool, GenError> {
    match schema.get("nullable") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(GenError::new(
            &ptr(pointer, "nullable"),
            "`nullable` must be a boolean",
            "true",
        )),
    }
}

/// The hand-written type configured for this schema's `type` and `format`, if any.
fn hand_written<'c>(cfg: &'c Config, schema: &Value) -> Option<&'c crate::HandWritten> {
    let (kind, format) = (
        schema.get("type").and_then(Value::as_str)?,
        schema.get("format").and_then(Value::as_str)?,
    );
    cfg.hand_written
        .iter()
        .find(|h| h.type_name == kind && h.format == format)
}

fn reference(schema: &Value, pointer: &str, cfg: &Config) -> Result<TokenStream, GenError> {
    let r = str_at(schema, pointer, "$ref")?;
    schema_ref(r, &ptr(pointer, "$ref"), cfg)
}

/// The generated type a `#/components/schemas/Name` reference (at `pointer`) names.
pub fn schema_ref(r: &str, pointer: &str, cfg: &Config) -> Result<TokenStream, GenError> {
    let name = r.strip_prefix("#/components/schemas/").ok_or_else(|| {
        GenError::new(
            pointer,
            format!("`{r}` is not a local schema reference"),
            "`#/components/schemas/Name`",
        )
    })?;
    let ident = format_ident!("{}", name);
    let module = crate::path_tokens(&cfg.types_module, "types module")?;
    Ok(quote! { #module::#ident })
}
