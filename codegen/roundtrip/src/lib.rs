//! The generator's round trip: `build.rs` runs the generator on every document in
//! `codegen/tests/specs/`, this crate compiles what it wrote, and the tests let dropshot emit
//! each document again and compare it with the one it came from. Whatever the generator
//! accepts, it must reproduce exactly.
//!
//! Nothing here serves requests: the extractor and problem impls below only satisfy the traits
//! the generated trait's signatures ask for.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// The extractor of the `itemAuth` security scheme: the operations that require it receive it.
#[derive(Debug)]
pub struct Authenticated;

#[async_trait::async_trait]
impl dropshot::SharedExtractor for Authenticated {
    async fn from_request<C: dropshot::ServerContext>(
        _: &dropshot::RequestContext<C>,
    ) -> Result<Self, dropshot::HttpError> {
        Err(dropshot::HttpError::for_internal_error(
            "the round trip serves no requests".into(),
        ))
    }

    fn metadata(_: dropshot::ApiEndpointBodyContentType) -> dropshot::ExtractorMetadata {
        dropshot::ExtractorMetadata {
            extension_mode: dropshot::ExtensionMode::None,
            parameters: vec![],
        }
    }
}

/// A hand-written constrained string (`{"type": "string", "format": "int64", "pattern": ...}`),
/// standing for the kind of type the generator is pointed at instead of deriving one.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Int64String(pub String);

impl schemars::JsonSchema for Int64String {
    fn is_referenceable() -> bool {
        false
    }
    fn schema_name() -> String {
        "Int64String".into()
    }
    fn json_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            format: Some("int64".into()),
            string: Some(Box::new(schemars::schema::StringValidation {
                pattern: Some("^-?(?:0|[1-9]\\d*)$".into()),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

/// Makes a generated problem schema usable as the body of declared error responses.
macro_rules! error_type {
    ($ty:path, $rejection:path, $body:path) => {
        impl From<$rejection> for $ty {
            fn from(_: $rejection) -> Self {
                unreachable!("the round trip serves no requests")
            }
        }
        impl $body for $ty {
            fn answer(&mut self, _: ::http::StatusCode, _: &str, _: &str) {}
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str("error")
            }
        }
        impl From<::dropshot::HttpError> for $ty {
            fn from(_: ::dropshot::HttpError) -> Self {
                unreachable!("the round trip serves no requests")
            }
        }
        impl ::dropshot::HttpResponseError for $ty {
            fn status_code(&self) -> ::dropshot::ErrorStatusCode {
                ::dropshot::ErrorStatusCode::INTERNAL_SERVER_ERROR
            }
        }
    };
}

include!(concat!(env!("OUT_DIR"), "/specs.rs"));
