//! Tests of the loop on a tiny RetinaNet and an in-memory batch source: three steps, a
//! resume through a real checkpoint (at an epoch's end, and mid-epoch with momentum: bit for
//! bit), a non-finite loss stopping the run, and skipped steps.

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Sgd, SgdConfig};
use burn::prelude::*;
use visage_data::{Batch, FaceStats, Target};
use visage_model::{DetectorFamily, RetinaNet};

use super::*;
use crate::checkpoint::{find_resumable, load_for_resume};
use crate::config::ExperimentConfig;
use crate::metrics::SkipRecord;
use crate::outputs::RunDirOutputs;

type Ad = Autodiff<Flex>;
type Model = RetinaNet<Ad>;
type ModelSgd = OptimizerAdaptor<Sgd<Flex>, Model, Ad>;

/// A freshly initialised model.
fn model() -> Model {
    RetinaNet::new(&visage_model::tiny::retinanet(), &Default::default()).unwrap()
}

/// Fresh models with one and the same initial weights (parameters initialise lazily from the
/// backend's generator, which the tests running in parallel share: the weights go through a
/// file instead).
fn same_start(dir: &Path) -> impl Fn() -> Model {
    let file = dir.join("initial.safetensors");
    model().save_weights(&file).unwrap();
    move || model().load_weights(&file).unwrap()
}

fn step() -> TrainStep<Ad, Model, ModelSgd> {
    TrainStep::new(SgdConfig::new().init(), &Default::default())
}

/// SGD with momentum 0.9 and weight decay: optimiser state that a resume must restore.
fn momentum_sgd() -> ModelSgd {
    SgdConfig::new()
        .with_momentum(Some(burn::optim::momentum::MomentumConfig {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
        }))
        .with_weight_decay(Some(burn::optim::decay::WeightDecayConfig {
            penalty: 1e-4,
        }))
        .init()
}

/// Two 32 × 32 images with one face each, pixels from `seed`.
fn batch(seed: f32) -> Batch {
    let images = (0..2 * 3 * 32 * 32)
        .map(|i| (i as f32 * 0.37 + seed).sin())
        .collect();
    let target = |x: f32| Target {
        boxes: vec![[x, 6.0, x + 14.0, 22.0]],
        landmarks: vec![None],
    };
    Batch {
        images,
        size: 32,
        targets: vec![target(4.0), target(12.0)],
        indices: vec![0, 1],
        skipped: Vec::new(),
        faces: FaceStats::default(),
    }
}

/// Three batches per epoch, the same every epoch.
struct Batches(Vec<Batch>);

impl BatchSource for Batches {
    fn batches_per_epoch(&self) -> usize {
        self.0.len()
    }

    fn epoch(
        &self,
        _epoch: usize,
        first: usize,
    ) -> Box<dyn Iterator<Item = Result<Batch, DataError>> + '_> {
        Box::new(self.0.iter().skip(first).cloned().map(Ok))
    }
}

fn three() -> Batches {
    Batches(vec![batch(1.0), batch(2.0), batch(3.0)])
}

/// Outputs that remember what the loop handed them.
#[derive(Default)]
struct Recorded {
    steps: Vec<StepRecord>,
    epochs_ended: Vec<usize>,
    skipped: Vec<usize>,
}

impl<M, O> RunOutputs<M, O> for Recorded {
    fn log_step(&mut self, record: &StepRecord) -> Result<(), TrainError> {
        self.steps.push(record.clone());
        Ok(())
    }

    fn log_skipped(&mut self, record: &SkipRecord) -> Result<(), TrainError> {
        self.skipped.push(record.iteration);
        Ok(())
    }

    fn checkpoint(
        &mut self,
        _model: &M,
        _optimizer: &O,
        _state: &mut TrainState,
        _events: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError> {
        Ok(())
    }

    fn end_epoch(
        &mut self,
        _model: &M,
        _optimizer: &O,
        state: &mut TrainState,
        _events: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError> {
        self.epochs_ended.push(state.epochs_done);
        Ok(())
    }
}

fn settings(epochs: usize) -> LoopSettings {
    LoopSettings {
        epochs,
        log_every: 1,
        checkpoint_every: 0,
        max_iterations: None,
        checkpoint_on_stop: true,
        guard: GuardSettings {
            on_non_finite: crate::NonFinitePolicy::Stop,
            max_consecutive_skips: 2,
            loss_spike_factor: 10.0,
        },
    }
}

fn schedule() -> LrSchedule {
    let spec: crate::TrainSpec = toml::from_str("epochs = 2\nbatch_size = 2\nlr = 0.01").unwrap();
    LrSchedule::new(&spec, 3)
}

#[test]
fn three_steps_update_the_model_log_every_step_and_end_the_epoch() {
    let mut state = TrainState::default();
    let mut outputs = Recorded::default();
    let mut events = Vec::new();
    let before = model();
    // The scores of the model on a fixed image.
    let weights = |m: &Model| -> Vec<f32> {
        let valid = m.valid_model();
        let x = Tensor::<Flex, 4>::ones([1, 3, 32, 32], &Default::default());
        valid.predictions(&valid.forward(x)).scores
    };
    let start = weights(&before);
    let (after, summary) = run_epochs(
        before,
        &mut step(),
        &mut state,
        &three(),
        &schedule(),
        &settings(1),
        Instant::now(),
        &mut outputs,
        &mut |e| {
            events.push(
                format!("{e:?}")
                    .split([' ', '('])
                    .next()
                    .unwrap()
                    .to_string(),
            )
        },
    )
    .unwrap();
    assert_eq!((state.epochs_done, state.iteration), (1, 3));
    assert_eq!(summary.images, 6);
    assert!(summary.last_loss.as_ref().unwrap().is_finite());
    assert_eq!(outputs.steps.len(), 3);
    assert_eq!(
        outputs
            .steps
            .iter()
            .map(|s| s.iteration)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Warm-up is off: every step at the base rate.
    assert!(outputs.steps.iter().all(|s| (s.lr - 0.01).abs() < 1e-12));
    assert_eq!(outputs.epochs_ended, [1]);
    assert_eq!(
        events,
        ["EpochStarted", "Step", "Step", "Step", "EpochFinished"]
    );
    assert_ne!(weights(&after), start, "the steps changed the weights");
}

/// A run directory config for `dir`, validation off.
fn config(dir: &Path) -> ExperimentConfig {
    toml::from_str(&format!(
        r#"
        name = "loop"
        run_dir = "{}"
        [data]
        root = "unused"
        input_size = 32
        [model]
        {}
        [train]
        epochs = 2
        batch_size = 2
        lr = 0.01
        log_every = 1
        "#,
        dir.display(),
        visage_model::tiny::RETINANET.replace("\n[", "\n[model.")
    ))
    .unwrap()
}

#[test]
fn a_resumed_run_continues_where_its_checkpoint_left_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let device = Default::default();
    let initial = same_start(dir.path());
    // The whole run, for reference: two epochs in one go.
    let mut whole = Recorded::default();
    run_epochs(
        initial(),
        &mut step(),
        &mut TrainState::default(),
        &three(),
        &schedule(),
        &settings(2),
        Instant::now(),
        &mut whole,
        &mut |_| {},
    )
    .unwrap();
    // The first epoch, checkpointed, then stopped.
    let mut first = RunDirOutputs::<Ad, Model>::open(&config, &device).unwrap();
    let mut state = TrainState::default();
    let mut saved = Vec::new();
    run_epochs(
        initial(),
        &mut step(),
        &mut state,
        &three(),
        &schedule(),
        &settings(1),
        Instant::now(),
        &mut first,
        &mut |e| {
            if let TrainEvent::CheckpointSaved { dir, best } = e {
                saved.push((dir.to_path_buf(), best));
            }
        },
    )
    .unwrap();
    assert_eq!(saved, [(dir.path().join("epoch-0001"), true)]);
    // Resumed from `last` into a fresh model and optimiser, as `visage train --resume` does:
    // the second epoch.
    let (model, optimizer, mut state) = load_for_resume(
        &dir.path().join("last"),
        model(),
        SgdConfig::new().init(),
        &device,
    )
    .unwrap();
    assert_eq!((state.epochs_done, state.iteration), (1, 3));
    let mut second = Recorded::default();
    run_epochs(
        model,
        &mut TrainStep::new(optimizer, &device),
        &mut state,
        &three(),
        &schedule(),
        &settings(2),
        Instant::now(),
        &mut second,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((state.epochs_done, state.iteration), (2, 6));
    assert_eq!(
        second
            .steps
            .iter()
            .map(|s| (s.epoch, s.iteration))
            .collect::<Vec<_>>(),
        [(1, 4), (1, 5), (1, 6)]
    );
    // The first resumed step sees exactly the checkpointed weights: its loss (computed before
    // its update) is the whole run's fourth; the next ones follow the optimiser's restored
    // momentum.
    assert_eq!(second.steps[0].loss, whole.steps[3].loss);
    for (resumed, reference) in second.steps.iter().zip(&whole.steps[3..]) {
        assert!(
            (resumed.loss - reference.loss).abs() <= 1e-6 * reference.loss.abs(),
            "{} vs {}",
            resumed.loss,
            reference.loss
        );
    }
    let metrics = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 3);
}

#[test]
fn a_non_finite_loss_stops_the_run_naming_the_step_and_saves_nothing() {
    let mut state = TrainState::default();
    let mut outputs = Recorded::default();
    // A learning rate that blows the weights up in one step.
    let spec: crate::TrainSpec = toml::from_str("epochs = 1\nbatch_size = 2\nlr = 1e300").unwrap();
    let result = run_epochs(
        model(),
        &mut step(),
        &mut state,
        &three(),
        &LrSchedule::new(&spec, 3),
        &settings(1),
        Instant::now(),
        &mut outputs,
        &mut |_| {},
    );
    // The first step's loss and gradients are finite; its update is not, and the second
    // step's loss shows it.
    match result {
        Err(TrainError::NonFiniteLoss {
            epoch, iteration, ..
        }) => assert_eq!((epoch, iteration), (0, 2)),
        Err(other) => panic!("{other}"),
        Ok((_, summary)) => panic!("no error: {:?}", summary.last_loss),
    }
    assert_eq!(state.iteration, 2);
    assert_eq!(state.epochs_done, 0);
    assert!(
        outputs.epochs_ended.is_empty(),
        "no epoch end, no checkpoint"
    );
    assert_eq!(outputs.steps.len(), 1);
}

/// Every value of the model's parameters and running statistics (their pending updates folded
/// in), in visiting order.
fn values(model: &Model) -> Vec<f32> {
    let _ = burn::module::Module::into_record(model.clone());
    struct All(Vec<f32>);
    impl burn::module::ModuleVisitor<Ad> for All {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<Ad, D>>) {
            let data = param.val().into_data().convert::<f32>();
            self.0.extend(data.to_vec::<f32>().unwrap());
        }
    }
    let mut all = All(Vec::new());
    burn::module::Module::visit(model, &mut all);
    all.0
}

#[test]
fn a_run_stopped_mid_epoch_resumes_bit_for_bit_with_momentum_and_batch_norm() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.train.epochs = 2;
    let device = Default::default();
    let initial = same_start(dir.path());
    // The uninterrupted run: two epochs of three steps.
    let mut whole = Recorded::default();
    let mut whole_state = TrainState::default();
    let (reference, _) = run_epochs(
        initial(),
        &mut TrainStep::new(momentum_sgd(), &device),
        &mut whole_state,
        &three(),
        &schedule(),
        &settings(2),
        Instant::now(),
        &mut whole,
        &mut |_| {},
    )
    .unwrap();
    // Stopped after 4 iterations: in the second epoch, after its first batch.
    let mut outputs = RunDirOutputs::<Ad, Model>::open(&config, &device).unwrap();
    let mut state = TrainState::default();
    let stop_at_4 = LoopSettings {
        max_iterations: Some(4),
        ..settings(2)
    };
    run_epochs(
        initial(),
        &mut TrainStep::new(momentum_sgd(), &device),
        &mut state,
        &three(),
        &schedule(),
        &stop_at_4,
        Instant::now(),
        &mut outputs,
        &mut |_| {},
    )
    .unwrap();
    drop(outputs);
    let from = find_resumable(dir.path()).unwrap();
    assert_eq!(from.dir, dir.path().join("last"));
    assert_eq!((from.state.epochs_done, from.state.iteration), (1, 4));
    assert_eq!(from.state.epoch.batches_done, 1);
    // A new "process": a fresh model (new Burn ids) and optimiser.
    let (model, optimizer, mut state) =
        load_for_resume(&from.dir, initial(), momentum_sgd(), &device).unwrap();
    let mut rest = Recorded::default();
    let (resumed, _) = run_epochs(
        model,
        &mut TrainStep::new(optimizer, &device),
        &mut state,
        &three(),
        &schedule(),
        &settings(2),
        Instant::now(),
        &mut rest,
        &mut |_| {},
    )
    .unwrap();
    let unlogged = TrainState {
        metrics_bytes: None,
        ..state
    };
    assert_eq!(unlogged, whole_state, "the same state at the end");
    let losses = |r: &Recorded| r.steps.iter().map(|s| s.loss).collect::<Vec<_>>();
    assert_eq!(losses(&rest), losses(&whole)[4..]);
    assert_eq!(values(&resumed), values(&reference), "bit for bit");
}

#[test]
fn skipped_steps_leave_the_model_alone_and_too_many_in_a_row_stop_the_run() {
    let skip = LoopSettings {
        guard: GuardSettings {
            on_non_finite: crate::NonFinitePolicy::Skip,
            ..settings(1).guard
        },
        ..settings(1)
    };
    // The middle batch has a NaN pixel: its loss is NaN.
    let mut poisoned = batch(2.0);
    poisoned.images[5] = f32::NAN;
    let source = Batches(vec![batch(1.0), poisoned.clone(), batch(3.0)]);
    let dir = tempfile::tempdir().unwrap();
    let initial = same_start(dir.path());
    let mut outputs = Recorded::default();
    let mut state = TrainState::default();
    let (after, _) = run_epochs(
        initial(),
        &mut step(),
        &mut state,
        &source,
        &schedule(),
        &skip,
        Instant::now(),
        &mut outputs,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(outputs.skipped, [2]);
    assert_eq!(state.guard.skipped_steps, 1);
    assert_eq!(
        state.guard.consecutive_skips, 0,
        "the third step reset the run"
    );
    // The same as training on the two good batches alone (SGD without momentum).
    let (two, _) = run_epochs(
        initial(),
        &mut step(),
        &mut TrainState::default(),
        &Batches(vec![batch(1.0), batch(3.0)]),
        &schedule(),
        &settings(1),
        Instant::now(),
        &mut Recorded::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(values(&after), values(&two));
    // Two poisoned batches in a row with max_consecutive_skips = 2: the run stops.
    let source = Batches(vec![batch(1.0), poisoned.clone(), poisoned]);
    let err = run_epochs(
        initial(),
        &mut step(),
        &mut TrainState::default(),
        &source,
        &schedule(),
        &skip,
        Instant::now(),
        &mut Recorded::default(),
        &mut |_| {},
    )
    .map(|_| ())
    .unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::TooManySkips {
                skips: 2,
                iteration: 3,
                ..
            }
        ),
        "{err}"
    );
}
