use thiserror::Error;

/// Why a schema could not be compiled.
///
/// Every variant names the JSON pointer of the offending location in the schema, so a
/// caller can tell the user exactly what to change.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SchemaError {
    /// A keyword (or a combination of keywords) whose meaning cannot be enforced.
    #[error("unsupported keyword `{keyword}` at `{pointer}`: {reason}")]
    Unsupported {
        keyword: String,
        pointer: String,
        reason: String,
    },
    /// The schema itself is malformed (wrong JSON type for a keyword, bad pattern, …).
    #[error("invalid schema at `{pointer}`: {reason}")]
    Invalid { pointer: String, reason: String },
    /// A `$ref` that does not resolve inside this document.
    #[error("unresolvable $ref `{reference}` at `{pointer}`")]
    UnresolvedRef { reference: String, pointer: String },
    /// No JSON value satisfies the schema (after cutting off recursion).
    #[error("the schema admits no value")]
    Unsatisfiable,
    /// The automaton exceeds [`Options::max_states`](crate::Options).
    #[error("the automaton grew past the limit of {limit} states at `{pointer}`")]
    TooLarge { limit: usize, pointer: String },
    /// Recursive `$ref`s expand into more than the limit of subschemas (mutually recursive
    /// definitions multiply), even at recursion depth 0.
    #[error("`$ref`s expand into more than {limit} subschemas at `{pointer}`")]
    TooManyExpansions { limit: usize, pointer: String },
}

impl SchemaError {
    pub(crate) fn unsupported(keyword: &str, pointer: &str, reason: impl Into<String>) -> Self {
        SchemaError::Unsupported {
            keyword: keyword.to_string(),
            pointer: pointer.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(pointer: &str, reason: impl Into<String>) -> Self {
        SchemaError::Invalid {
            pointer: pointer.to_string(),
            reason: reason.into(),
        }
    }
}
