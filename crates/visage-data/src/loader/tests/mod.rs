//! Loader tests on a small fixture written by the tests: the pipeline (determinism,
//! augmentations, configuration, prefetch), bad images (skip and error modes) and truncated
//! ones; sharded loaders.

mod bad_images;
mod fixtures;
mod pipeline;
mod shards;
mod truncated;
