//! Dropout (placeholder).
