//! Naive loop-level reference implementations (being written).
