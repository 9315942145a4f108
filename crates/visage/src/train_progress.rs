//! How `visage train` shows a run: the training loop's events as a progress bar per epoch
//! (on a terminal) and one line per epoch, validation and notable step of the set-up.

use indicatif::{ProgressBar, ProgressStyle};
use visage_train::TrainEvent;

/// Renders [`TrainEvent`]s on stderr.
#[derive(Debug, Default)]
pub struct TrainProgress {
    /// Draw progress bars (stderr is a terminal).
    bars: bool,
    /// The bar of the running epoch.
    bar: Option<ProgressBar>,
}

impl TrainProgress {
    /// A renderer; bars only when `bars`.
    pub fn new(bars: bool) -> Self {
        Self { bars, bar: None }
    }

    /// Prints a line above the running epoch's bar (or plainly without one).
    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Shows one event.
    pub fn show(&mut self, event: TrainEvent) {
        match event {
            TrainEvent::GeneratingSynth {
                root,
                train_images,
                val_images,
            } => eprintln!(
                "generating the synthetic WIDER FACE set in {} ({train_images} train, \
                 {val_images} val images)",
                root.display()
            ),
            TrainEvent::TrainSet(report) => eprintln!(
                "train set: {} images, {} of {} faces kept ({} invalid, {} degenerate, {} \
                 outside dropped; {} clipped)",
                report.images,
                report.faces_kept,
                report.faces_read,
                report.dropped_invalid,
                report.dropped_degenerate,
                report.dropped_outside,
                report.clipped
            ),
            TrainEvent::UnreadableImages {
                count,
                first,
                reason,
            } => eprintln!(
                "train set: {count} image(s) with an unreadable header, skipped when loaded \
                 (first: {}: {reason})",
                first.display()
            ),
            TrainEvent::BackboneInitialised(file) => {
                eprintln!("backbone initialised from {}", file.display())
            }
            TrainEvent::CheckpointPassedOver { dir, reason } => {
                eprintln!("warning: not resuming from {}: {reason}", dir.display())
            }
            TrainEvent::Resumed {
                from,
                epochs_done,
                iteration,
            } => eprintln!(
                "resumed from {} after {epochs_done} epochs (iteration {iteration})",
                from.display()
            ),
            TrainEvent::EpochStarted {
                epoch,
                epochs,
                steps,
                first,
            } => {
                if self.bars {
                    let bar = ProgressBar::new(steps as u64);
                    bar.set_position(first as u64);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix} [{bar:28.cyan/blue}] {pos}/{len} {elapsed_precise} {msg}",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
                    self.bar = Some(bar);
                }
            }
            TrainEvent::Step {
                lr,
                loss,
                images_per_s,
                ..
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!(
                        "loss {} {images_per_s:.1} img/s lr {lr:.2e}",
                        loss.describe()
                    ));
                    bar.inc(1);
                }
            }
            TrainEvent::LossSpike {
                epoch,
                iteration,
                loss,
                running_mean,
            } => self.line(&format!(
                "warning: epoch {}, iteration {iteration}: loss {loss:.4} is {:.0}× its running \
                 mean {running_mean:.4} (train.loss_spike_factor); a learning rate too high?",
                epoch + 1,
                f64::from(loss) / running_mean.max(f64::MIN_POSITIVE)
            )),
            TrainEvent::StepSkipped {
                epoch,
                iteration,
                detail,
                consecutive,
                limit,
            } => self.line(&format!(
                "warning: epoch {}, iteration {iteration}: step skipped, non-finite {detail} \
                 ({consecutive} in a row of at most {limit})",
                epoch + 1
            )),
            TrainEvent::EpochFinished {
                epoch,
                epochs,
                mean_loss,
                images_per_s,
                seconds,
                data,
            } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                eprintln!(
                    "epoch {}/{epochs}: mean loss {mean_loss:.4}, {images_per_s:.1} img/s, \
                     {seconds:.0} s",
                    epoch + 1
                );
                let f = &data.faces;
                eprintln!(
                    "epoch {}: faces {} annotated, {} kept ({} outside the crop, {} below \
                     min_face_px dropped; {} clipped to the image)",
                    epoch + 1,
                    f.annotated,
                    f.kept,
                    f.dropped_by_crop,
                    f.dropped_small,
                    f.clipped_to_image
                );
                if let Some(line) = data.skipped_line(5) {
                    eprintln!("epoch {}: {line}", epoch + 1);
                }
            }
            TrainEvent::Validating { .. } | TrainEvent::CheckpointSaved { .. } => {}
            TrainEvent::Validated(record) => eprintln!(
                "  val AP: easy {:.4} medium {:.4} hard {:.4} ({:.1} s)",
                record.easy, record.medium, record.hard, record.seconds
            ),
        }
    }
}
