//! WIDER FACE readers, augmentation, the batch loader and the synthetic face set.
//!
//! Where things are: [`layout`] (the WIDER FACE folder layout of a data root: split images,
//! annotation files, ground truth), [`wider_txt`], [`label_txt`] and [`image_list`] (the
//! annotation and list formats), [`dataset`] (records with the annotation policy applied),
//! [`augment`] and [`resize`] (the augmentation steps), [`loader`] (the batch loader; its
//! settings' defaults in [`loader::defaults`]), [`synth`] (the synthetic face set).
//!
//! Box formats: annotation files and [`FaceAnnotation::bbox`] are `[x, y, w, h]` pixels (WIDER's
//! xywh); augmentation samples and loader targets are `[x1, y1, x2, y2]` pixels.

pub mod augment;
pub mod dataset;
pub mod error;
pub mod image_list;
pub mod label_txt;
pub mod layout;
pub mod loader;
pub mod resize;
pub mod synth;
pub mod wider_txt;

pub use augment::{
    colour_jitter, expand, horizontal_flip, mean_pixel, pad_to_square, random_square_crop,
    resize_square, resize_square_with, to_chw, to_chw_ordered, ChannelOrder, CropFallback,
    CropScale, Sample,
};
pub use dataset::{Dataset, SelectionPolicy, SelectionReport};
pub use error::{BadImageKind, DataError};
pub use image_list::{read_test_file_list, read_val_image_list, write_image_list, ImageListEntry};
pub use label_txt::{read_label_txt, write_label_txt, LabelFace, LabelImage, Landmarks};
pub use layout::{annotation_file, ground_truth_dir, images_dir, split_images, Split, SplitImage};
pub use loader::{
    load_rgb, load_rgb_limited, Batch, EpochIter, EpochSummary, FaceStats, Loader, LoaderConfig,
    OnBadImage, SkippedImage, Target, DEFAULT_MAX_IMAGE_PIXELS,
};
pub use resize::{resize_rgb, resize_rgb_with, Interpolation};
pub use synth::{generate, render, SynthConfig, SynthImage, SynthSplit, SynthSummary};
pub use wider_txt::{
    read_path_list, read_wider_txt, write_path_list, write_wider_txt, FaceAnnotation,
    ImageAnnotation,
};
