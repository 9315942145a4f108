//! Loader tests on a small fixture written by the tests: the pipeline (determinism,
//! augmentations, configuration, prefetch) and bad images (skip and error modes).

mod bad_images;
mod fixtures;
mod pipeline;
