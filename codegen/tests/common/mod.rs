//! What the generator's tests configure it with.

use leadping_codegen::{Config, HandWritten, Security};

pub fn config() -> Config {
    Config {
        trait_name: "RoundTripApi".into(),
        trait_doc: "The API under test.".into(),
        types_module: "crate::wire".into(),
        security: vec![Security {
            scheme: "itemAuth".into(),
            extractor: "crate::Authenticated".into(),
        }],
        hand_written: vec![HandWritten {
            type_name: "string".into(),
            format: "int64".into(),
            path: "crate::Int64String".into(),
        }],
    }
}
