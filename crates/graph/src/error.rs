use thiserror::Error;

/// Everything that can go wrong opening, checking, running or writing a model graph. Each
/// message is one line that names the file, node or input concerned.
#[derive(Debug, Error)]
pub enum GraphError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{count} unsupported operator{s}: {list}", s = if *count == 1 { "" } else { "s" })]
    Unsupported { count: usize, list: String },
    #[error("input {name}: {message}")]
    Input { name: String, message: String },
    #[error("node {node} ({op}): {message}")]
    Node {
        node: String,
        op: String,
        message: String,
    },
    #[error("export: {0}")]
    Export(String),
}

impl GraphError {
    pub fn invalid(message: impl Into<String>) -> Self {
        GraphError::Invalid(message.into())
    }
}
