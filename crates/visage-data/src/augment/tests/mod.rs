//! Augmentation tests, by topic: fixed cases of the geometric transforms, of the colour and
//! normalisation steps, and marker property tests, over shared marker fixtures.

mod colour;
mod fixtures;
mod geometry;
mod props;
