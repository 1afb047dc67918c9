//! Embedding lookup (placeholder).
