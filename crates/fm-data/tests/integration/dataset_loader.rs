//! The data path end to end: a token shard on disk, language-model windows read from the mapping,
//! a seeded split, per-rank sharded shuffling and the prefetching loader.

use std::collections::BTreeSet;
use std::sync::Arc;

use fm_data::dataset::collate::{LmCollate, PadCollate};
use fm_data::dataset::sampler::{
    Sampler, SequentialSampler, ShardRemainder, ShardedSampler, ShuffledSampler,
};
use fm_data::dataset::split::{split_indices, SplitFractions};
use fm_data::dataset::{DataLoader, Dataset, InMemoryDataset, Subset, TokenWindowDataset};
use fm_data::packing::{pack_stream, PackingOptions};
use fm_data::token_shard::{TokenShard, TokenShardWriter};

fn shard(name: &str, tokens: &[u32]) -> (Arc<TokenShard>, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "fm-data-loader-{}-{name}.tokens",
        std::process::id()
    ));
    let mut w = TokenShardWriter::create(&path, 50_000).unwrap();
    w.write(tokens).unwrap();
    w.finish().unwrap();
    (Arc::new(TokenShard::open(&path).unwrap()), path)
}

fn stream(n: u32) -> Vec<u32> {
    (0..n)
        .map(|i| i.wrapping_mul(2_654_435_761) % 50_000)
        .collect()
}

#[test]
fn shard_windows_through_the_loader_equal_in_memory_packing() {
    let tokens = stream(1001);
    let (shard, path) = shard("packing", &tokens);
    let context = 16;
    let data = Arc::new(TokenWindowDataset::language_model(shard, context).unwrap());
    let packed = pack_stream(&tokens, &PackingOptions::new(context, 0)).unwrap();
    assert_eq!(data.len(), packed.len());
    let loader = DataLoader::new(
        data.clone(),
        SequentialSampler::new(data.len()),
        LmCollate::new(context),
        8,
    )
    .unwrap();
    let mut row = 0;
    for batch in loader.epoch(0) {
        let batch = batch.unwrap();
        for r in 0..batch.inputs.nrows() {
            assert_eq!(batch.inputs.row(r), packed.inputs.row(row));
            assert_eq!(batch.targets.row(r), packed.targets.row(row));
            row += 1;
        }
    }
    assert_eq!(row, packed.len());
    std::fs::remove_file(path).unwrap();
}

#[test]
fn ranks_of_a_data_parallel_job_see_every_training_window_exactly_once() {
    let (shard, path) = shard("ranks", &stream(5000));
    let context = 8;
    let windows = Arc::new(TokenWindowDataset::language_model(shard, context).unwrap());
    let splits = split_indices(
        windows.len(),
        SplitFractions::new(0.9, 0.05, 0.05).unwrap(),
        7,
    )
    .unwrap();
    let train = Arc::new(Subset::new(windows.clone(), splits.train.clone()).unwrap());
    let world = 3;
    for epoch in 0..2 {
        let mut seen: Vec<Vec<u32>> = Vec::new();
        for rank in 0..world {
            let sampler = ShardedSampler::new(
                ShuffledSampler::new(train.len(), 99),
                rank,
                world,
                ShardRemainder::Uneven,
            )
            .unwrap();
            let loader = DataLoader::new(train.clone(), sampler, LmCollate::new(context), 5)
                .unwrap()
                .prefetch(3);
            for batch in loader.epoch(epoch) {
                let batch = batch.unwrap();
                for r in 0..batch.inputs.nrows() {
                    let mut w = batch.inputs.row(r).to_vec();
                    w.push(*batch.targets.row(r).last().unwrap());
                    seen.push(w);
                }
            }
        }
        let expected: Vec<Vec<u32>> = splits
            .train
            .iter()
            .map(|&i| windows.get(i).unwrap())
            .collect();
        assert_eq!(seen.len(), expected.len(), "epoch {epoch}");
        let seen_set: BTreeSet<_> = seen.into_iter().collect();
        let expected_set: BTreeSet<_> = expected.into_iter().collect();
        assert_eq!(seen_set, expected_set, "epoch {epoch}");
    }
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_resumed_run_continues_with_the_same_batches_on_another_thread_count() {
    let sequences: Vec<Vec<u32>> = (0..97u32).map(|i| (0..i % 13 + 1).collect()).collect();
    let data = Arc::new(InMemoryDataset::new(sequences));
    let make = || {
        DataLoader::new(
            data.clone(),
            ShuffledSampler::new(97, 5),
            PadCollate::new(0),
            6,
        )
        .unwrap()
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let full: Vec<_> = one.install(|| make().epoch(2).map(Result::unwrap).collect());
    // Stop after 7 batches on one thread, save the position, resume on three threads.
    let saved = one.install(|| {
        let mut it = make().epoch(2);
        for _ in 0..7 {
            it.next().unwrap().unwrap();
        }
        serde_json::to_string(&it.position()).unwrap()
    });
    let rest: Vec<_> = three.install(|| {
        make()
            .resume(serde_json::from_str(&saved).unwrap())
            .map(Result::unwrap)
            .collect()
    });
    assert_eq!(rest, full[7..]);
    // Padding masks agree with the sequence lengths.
    for batch in &full {
        for (r, &len) in batch.lengths.iter().enumerate() {
            let mask = batch.attention_mask.row(r);
            assert!(mask.iter().take(len).all(|&m| m == 1));
            assert!(mask.iter().skip(len).all(|&m| m == 0));
        }
    }
    let sampler_len = ShuffledSampler::new(97, 5).len();
    assert_eq!(
        full.iter().map(|b| b.lengths.len()).sum::<usize>(),
        sampler_len
    );
}
