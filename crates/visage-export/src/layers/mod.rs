//! Exporters of the components the families are built from, mirroring each component's
//! `forward` (batch norm folded into the convolutions).

pub mod backbone;
pub mod conv;
pub mod heads;
pub mod pyramid;
pub mod retinaface_neck;
pub mod srn;
