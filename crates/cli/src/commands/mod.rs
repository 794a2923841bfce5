//! One module per subcommand.

pub mod bench;
pub mod filter;
pub mod models;
pub mod summary;
