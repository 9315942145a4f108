//! PyTorch weight import and safetensors export.
//!
//! - [`StateDict::read`] reads `torch.save(model.state_dict())` files (zip or legacy pickle,
//!   through burn-store's PyTorch reader) and safetensors files, removing a `module.` prefix.
//! - [`load_state_dict`] applies one to a module through a [`TorchLayout`] (the key mapping of
//!   one architecture), converting half precision to `f32`, all or nothing: a missing,
//!   unexpected or mis-shaped key is an error that lists every such key.
//! - [`save_safetensors`] writes a module with PyTorch key names.
//! - [`formula_state_dict`] fills a module from the deterministic formula the parity fixtures
//!   are generated with (`tools/parity/backbone_fixtures.py`).

mod error;
mod formula;
mod load;
mod save;
mod state_dict;

pub use error::{KeyMismatch, Misshaped, WeightsError};
pub use formula::{formula_state_dict, formula_values, key_seed};
pub use load::{is_batch_norm_counter, load_state_dict, parameter_shapes, TorchLayout};
pub use save::save_safetensors;
pub use state_dict::{StateDict, WeightFormat};
