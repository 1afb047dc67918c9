//! Fixed-length windows of a memory-mapped token shard as a dataset.
//!
//! Nothing is loaded up front: [`TokenWindowDataset::get`] copies one window's ids out of the
//! mapping, so the operating system pages in only what is read and a corpus larger than memory
//! trains as well as a small one.

use std::sync::Arc;

use super::{index_out_of_range, Dataset};
use crate::error::{DataError, Result};
use crate::token_shard::TokenShard;

/// Windows of `window` ids starting every `stride` ids of a [`TokenShard`]; window `i` is ids
/// `i * stride .. i * stride + window`. Windows that would run past the end are left out.
///
/// For language modelling take `window = context + 1` and `stride = context`
/// ([`language_model`](Self::language_model)): every id after the first is a target exactly once,
/// and [`LmCollate`](super::collate::LmCollate) splits windows into inputs and targets.
#[derive(Clone, Debug)]
pub struct TokenWindowDataset {
    shard: Arc<TokenShard>,
    window: usize,
    stride: usize,
}

impl TokenWindowDataset {
    /// Windows of `window` ids every `stride` ids; both must be at least 1.
    pub fn new(shard: Arc<TokenShard>, window: usize, stride: usize) -> Result<Self> {
        if window == 0 || stride == 0 {
            return Err(DataError::config(
                "TokenWindowDataset",
                format!("window ({window}) and stride ({stride}) must be at least 1"),
            ));
        }
        Ok(TokenWindowDataset {
            shard,
            window,
            stride,
        })
    }

    /// Windows of `context + 1` ids every `context` ids: inputs and shifted targets.
    pub fn language_model(shard: Arc<TokenShard>, context: usize) -> Result<Self> {
        if context == 0 {
            return Err(DataError::config(
                "TokenWindowDataset::language_model",
                "context must be at least 1",
            ));
        }
        Self::new(shard, context + 1, context)
    }

    /// Ids per window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The shard read from.
    pub fn shard(&self) -> &TokenShard {
        &self.shard
    }
}

impl Dataset for TokenWindowDataset {
    type Item = Vec<u32>;

    fn len(&self) -> usize {
        match self.shard.len().checked_sub(self.window) {
            Some(rest) => rest / self.stride + 1,
            None => 0,
        }
    }

    fn get(&self, index: usize) -> Result<Vec<u32>> {
        if index >= self.len() {
            return Err(index_out_of_range("token windows", index, self.len()));
        }
        self.shard.read(index * self.stride, self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token_shard::TokenShardWriter;

    fn shard_of(n: u32, name: &str) -> (Arc<TokenShard>, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "fm-data-windows-{}-{name}.tokens",
            std::process::id()
        ));
        let mut w = TokenShardWriter::create(&path, 70_000).unwrap();
        w.write(&(0..n).map(|i| i * 7 % 70_000).collect::<Vec<_>>())
            .unwrap();
        w.finish().unwrap();
        (Arc::new(TokenShard::open(&path).unwrap()), path)
    }

    #[test]
    fn language_model_windows_overlap_by_one_and_stop_before_the_end() {
        let (shard, path) = shard_of(23, "lm");
        let data = TokenWindowDataset::language_model(shard.clone(), 5).unwrap();
        // 22 targets -> 4 full windows of 5.
        assert_eq!(data.len(), 4);
        for i in 0..data.len() {
            let w = data.get(i).unwrap();
            assert_eq!(w.len(), 6);
            assert_eq!(w, shard.read(i * 5, 6).unwrap());
        }
        assert_eq!(data.get(0).unwrap()[5], data.get(1).unwrap()[0]);
        let err = data.get(4).unwrap_err();
        assert!(err.to_string().contains("token windows"), "{err}");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn short_shards_and_bad_settings() {
        let (shard, path) = shard_of(3, "short");
        assert_eq!(
            TokenWindowDataset::new(shard.clone(), 4, 1).unwrap().len(),
            0
        );
        assert_eq!(
            TokenWindowDataset::new(shard.clone(), 3, 1).unwrap().len(),
            1
        );
        assert_eq!(
            TokenWindowDataset::new(shard.clone(), 1, 1).unwrap().len(),
            3
        );
        assert!(TokenWindowDataset::new(shard.clone(), 0, 1).is_err());
        assert!(TokenWindowDataset::new(shard.clone(), 2, 0).is_err());
        assert!(TokenWindowDataset::language_model(shard, 0).is_err());
        std::fs::remove_file(path).unwrap();
    }
}
