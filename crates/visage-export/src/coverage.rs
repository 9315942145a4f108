//! Every parameter of the model must be read by an exporter or deliberately left out: the
//! check that turns "a layer the exporter does not know" into an error naming it.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use visage_kernels::KernelBackend;

use crate::error::ExportError;
use crate::graph::ParamUse;

/// The ids of every float parameter of `module`.
pub(crate) fn param_ids<B: KernelBackend, M: Module<B>>(module: &M) -> Vec<ParamId> {
    collect(module).into_iter().map(|(_, id)| id).collect()
}

/// `(path, id)` of every float parameter of `module`; paths skip enum variants, as
/// checkpoints do (`backbone.layer1.0.conv1.weight`).
fn collect<B: KernelBackend, M: Module<B>>(module: &M) -> Vec<(String, ParamId)> {
    let mut visitor = Collect {
        path: Vec::new(),
        found: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.found
}

/// Errors naming every parameter of `model` that `uses` does not account for.
pub(crate) fn check_every_parameter_used<B: KernelBackend, M: Module<B>>(
    model: &M,
    uses: &BTreeMap<ParamId, ParamUse>,
) -> Result<(), ExportError> {
    let unknown: Vec<String> = collect(model)
        .into_iter()
        .filter(|(_, id)| !uses.contains_key(id))
        .map(|(path, _)| path)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ExportError::UnknownLayers(unknown))
    }
}

struct Collect {
    path: Vec<Option<String>>,
    found: Vec<(String, ParamId)>,
}

impl<B: KernelBackend> ModuleVisitor<B> for Collect {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        let variant = container_type.starts_with("Enum:");
        self.path.push((!variant).then(|| name.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let mut path: Vec<&str> = self.path.iter().flatten().map(String::as_str).collect();
        path.retain(|p| !p.is_empty());
        self.found.push((path.join("."), param.id));
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use visage_model::{DetectorFamily, RetinaNet};

    use super::*;
    use crate::graph::{Dim, ElemType, Graph};
    use crate::layers::backbone::backbone;

    /// An exporter that knows only the backbone stands for one that does not know a layer:
    /// the check names the neck's and head's parameters instead of writing a partial graph.
    #[test]
    fn parameters_no_exporter_read_are_named_in_the_error() {
        let _stream = crate::testing::seeded(1);
        let device = Default::default();
        let model = RetinaNet::<Flex>::new(&visage_model::tiny::retinanet(), &device).unwrap();
        let mut g = Graph::new(17);
        let dims = [
            Dim::Named("N".into()),
            Dim::Fixed(3),
            Dim::Fixed(64),
            Dim::Fixed(64),
        ];
        let images = g.input("images", ElemType::F32, &dims);
        backbone(&mut g, &images, &model.backbone, "backbone").unwrap();
        let err = check_every_parameter_used(&model, g.param_uses()).unwrap_err();
        let ExportError::UnknownLayers(paths) = &err else {
            panic!("expected UnknownLayers, got {err}");
        };
        assert!(
            paths.iter().all(|p| !p.starts_with("backbone.")),
            "{paths:?}"
        );
        assert!(paths.iter().any(|p| p.starts_with("neck.")), "{paths:?}");
        assert!(paths.iter().any(|p| p.starts_with("head.")), "{paths:?}");
        let message = err.to_string();
        assert!(message.contains("does not know the layer"), "{message}");
        assert!(message.contains("`neck."), "{message}");
    }

    #[test]
    fn left_out_parameters_count_as_accounted_for() {
        let _stream = crate::testing::seeded(2);
        let device = Default::default();
        let model = RetinaNet::<Flex>::new(&visage_model::tiny::retinanet(), &device).unwrap();
        let mut g = Graph::new(17);
        g.leave_out_module(&model, "test");
        check_every_parameter_used(&model, g.param_uses()).unwrap();
    }
}
