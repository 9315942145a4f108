//! Optimiser state that survives a new process.
//!
//! Burn gives every parameter a fresh random id when a model is built, and an optimiser's
//! state (SGD momentum, Adam moments) is keyed by those ids. A resumed run builds a new model,
//! so the ids in a checkpointed optimiser state would match none of its parameters and the
//! state would be silently dropped. Checkpoints therefore key the optimiser state by each
//! parameter's module path (`backbone.layer1.0.conv1.weight`): [`ParamPaths`] translates
//! between a model's ids and its paths when the state is written and read.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use visage_kernels::KernelBackend;

/// The module path of every float parameter of a model, by its id as Burn's records write it
/// ([`ParamId::serialize`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamPaths {
    path_of: HashMap<String, String>,
    id_of: HashMap<String, String>,
}

impl ParamPaths {
    /// The paths of `model`'s parameters (running statistics included; they have no
    /// optimiser state).
    pub fn of<B: KernelBackend, M: Module<B>>(model: &M) -> Self {
        let mut visitor = Collect {
            path: Vec::new(),
            found: Vec::new(),
        };
        model.visit(&mut visitor);
        let mut paths = ParamPaths::default();
        for (path, id) in visitor.found {
            let id = id.serialize();
            paths.id_of.insert(path.clone(), id.clone());
            paths.path_of.insert(id, path);
        }
        paths
    }

    /// The path of the parameter whose serialised id is `id`.
    pub fn path(&self, id: &str) -> Option<&str> {
        self.path_of.get(id).map(String::as_str)
    }

    /// The serialised id of the parameter at `path`.
    pub fn id(&self, path: &str) -> Option<&str> {
        self.id_of.get(path).map(String::as_str)
    }
}

/// Records `(path, id)` of every float parameter, tracking the module path. Enum variants
/// (`ResNet`, `Fpn`, ...) are left out of the path, as in the weights file.
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
        let path: Vec<&str> = self.path.iter().flatten().map(String::as_str).collect();
        self.found.push((path.join("."), param.id));
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use visage_model::{DetectorFamily, RetinaNet};

    use super::*;

    #[test]
    fn two_builds_of_a_model_have_other_ids_and_the_same_paths() {
        let spec = visage_model::tiny::retinanet();
        let device = Default::default();
        let a = ParamPaths::of(&RetinaNet::<Flex>::new(&spec, &device).unwrap());
        let b = ParamPaths::of(&RetinaNet::<Flex>::new(&spec, &device).unwrap());
        assert!(a.id_of.len() > 10);
        assert_eq!(a.id_of.len(), a.path_of.len(), "paths and ids are distinct");
        let mut paths: Vec<&String> = a.id_of.keys().collect();
        paths.sort();
        let mut other: Vec<&String> = b.id_of.keys().collect();
        other.sort();
        assert_eq!(paths, other);
        assert!(a.id("backbone.conv1.weight").is_some(), "{paths:?}");
        for path in paths {
            let (ia, ib) = (a.id(path).unwrap(), b.id(path).unwrap());
            assert_ne!(ia, ib, "Burn's ids are fresh per build");
            assert_eq!(a.path(ia), Some(path.as_str()));
        }
    }
}
