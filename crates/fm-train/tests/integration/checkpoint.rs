//! `CheckpointDir` on its own: crash leftovers, pruning, and restoring into a model that differs.

use fm_optim::{NamedParam, Optimizer, Sgd, SgdConfig};
use fm_tensor::ParamStore;
use fm_train::checkpoint::{store_params, CheckpointDir, TrainerState};
use fm_train::{LoaderPosition, TrainError};
use ndarray::{array, ArrayD};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fm-train-ck-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn state(step: u64) -> TrainerState {
    let mut s = TrainerState::new(3, LoaderPosition::default());
    s.step = step;
    s
}

#[test]
fn leftovers_of_a_crashed_save_are_ignored_and_cleaned_up() {
    let root = temp_dir("crash");
    let dir = CheckpointDir::new(&root, 3).unwrap();
    let w = array![1.0f32].into_dyn();
    dir.save([("w", w.view())], None, &state(5)).unwrap();
    // What a save killed halfway leaves: a staging directory without a manifest.
    let staging = root.join(".step-000010.partial-999-0");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("model.safetensors"), b"half").unwrap();
    assert_eq!(dir.steps().unwrap(), [5]);
    assert_eq!(
        dir.latest_valid::<f32>()
            .unwrap()
            .unwrap()
            .checkpoint
            .state
            .step,
        5
    );
    CheckpointDir::new(&root, 3).unwrap();
    assert!(!staging.exists());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn keeps_the_newest_and_drops_an_abandoned_continuation() {
    let root = temp_dir("prune");
    let dir = CheckpointDir::new(&root, 2).unwrap();
    let w = array![1.0f64].into_dyn();
    for step in [1, 2, 3, 4] {
        dir.save([("w", w.view())], None, &state(step)).unwrap();
    }
    assert_eq!(dir.steps().unwrap(), [3, 4]);
    // Resumed from 3 and saved again at 3: the old step 4 belongs to the abandoned run.
    let w2 = array![2.0f64].into_dyn();
    dir.save([("w", w2.view())], None, &state(3)).unwrap();
    assert_eq!(dir.steps().unwrap(), [3]);
    let loaded = dir.load::<f64>(3).unwrap();
    assert_eq!(loaded.params[0].1, w2);
    assert!(CheckpointDir::new(&root, 0).is_err());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn optimizer_state_round_trips_and_mismatched_models_are_refused() {
    let root = temp_dir("restore");
    let dir = CheckpointDir::new(&root, 1).unwrap();
    let mut store = ParamStore::<f32>::new();
    store.add("a", array![1.0f32, 2.0]).unwrap();
    store.add("b", array![[3.0f32]]).unwrap();
    let mut sgd = Sgd::<f32>::new(SgdConfig::builder().lr(0.1).momentum(0.9).build().unwrap());
    let (mut v, mut g) = (array![1.0f32].into_dyn(), array![0.5f32].into_dyn());
    sgd.step(&mut [NamedParam::new("v", v.view_mut(), g.view_mut())])
        .unwrap();
    let saved = sgd.state();
    dir.save(store_params(&store), Some(&saved), &state(7))
        .unwrap();
    let ckpt = dir.load::<f32>(7).unwrap();
    assert_eq!(ckpt.optimizer.as_ref(), Some(&saved));

    let mut same = ParamStore::<f32>::new();
    same.add("a", array![0.0f32, 0.0]).unwrap();
    same.add("b", array![[0.0f32]]).unwrap();
    ckpt.restore_params(&mut same).unwrap();
    assert_eq!(
        same.value(same.id("b").unwrap()),
        &array![[3.0f32]].into_dyn()
    );

    let mut reshaped = ParamStore::<f32>::new();
    reshaped.add("a", array![0.0f32, 0.0, 0.0]).unwrap();
    reshaped.add("b", array![[0.0f32]]).unwrap();
    let err = ckpt.restore_params(&mut reshaped).unwrap_err();
    assert!(
        matches!(&err, TrainError::ParamMismatch { name, .. } if name == "a"),
        "{err}"
    );
    assert!(
        err.to_string().contains("[2]") && err.to_string().contains("[3]"),
        "{err}"
    );
    // Nothing was changed by the refused restore.
    assert_eq!(
        reshaped.value(reshaped.id("a").unwrap()),
        &ArrayD::<f32>::zeros(vec![3])
    );

    let mut bigger = ParamStore::<f32>::new();
    bigger.add("a", array![0.0f32, 0.0]).unwrap();
    bigger.add("b", array![[0.0f32]]).unwrap();
    bigger.add("c", array![0.0f32]).unwrap();
    let err = ckpt.restore_params(&mut bigger).unwrap_err();
    assert!(
        err.to_string().contains("\"c\"") && err.to_string().contains("not in the checkpoint"),
        "{err}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
