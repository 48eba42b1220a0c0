//! HTTP endpoints (placeholder until written).
