//! Which secrets a job may read and where their values come from. Values never pass through the
//! planner: a [`SecretScope`] is a recipe the driver applies to the run's secret values.
//!
//! A job of the planned workflow sees every secret of the run. A job of a called workflow sees
//! what its caller passes: everything with `secrets: inherit`, or the names of a `secrets:`
//! mapping whose values are templates over the caller's own `secrets` context. Nested calls
//! stack one layer per mapping.

use gantry_expr::{Contexts, Object, Template, Value};
use indexmap::IndexMap;

/// The secrets a job may read, as layers of `secrets:` mappings applied to the run's secrets.
///
/// Serializable, so that a server can store it with a queued job and resolve it when an agent
/// takes the job.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretScope {
    /// Outermost first. Each layer maps a secret name to a template over the `secrets` context
    /// produced by the layers before it (the run's secrets for the first one).
    layers: Vec<Vec<(String, String)>>,
}

impl SecretScope {
    /// Every secret of the run.
    pub fn all() -> SecretScope {
        SecretScope::default()
    }

    /// This scope narrowed by a call's `secrets:` mapping (name to template).
    pub fn mapped(&self, mapping: Vec<(String, String)>) -> SecretScope {
        let mut layers = self.layers.clone();
        layers.push(mapping);
        SecretScope { layers }
    }

    /// Whether the job sees the run's secrets unchanged.
    pub fn is_all(&self) -> bool {
        self.layers.is_empty()
    }

    /// The names the job may read, given the run's secret names.
    pub fn names(&self, run_secret_names: &[String]) -> Vec<String> {
        match self.layers.last() {
            Some(layer) => layer.iter().map(|(name, _)| name.clone()).collect(),
            None => run_secret_names.to_vec(),
        }
    }

    /// The secret values the job may read, computed from the run's. A template that fails to
    /// evaluate is an error naming the secret.
    pub fn resolve(
        &self,
        run_secrets: &IndexMap<String, String>,
    ) -> Result<IndexMap<String, String>, String> {
        let mut current = run_secrets.clone();
        for layer in &self.layers {
            let mut object = Object::new();
            for (name, value) in &current {
                object.insert(name.clone(), Value::String(value.clone()));
            }
            let mut ctx = Contexts::new();
            ctx.insert("secrets", Value::Object(object));
            let mut next = IndexMap::new();
            for (name, template) in layer {
                let value = Template::parse(template)
                    .and_then(|t| t.evaluate_to_string(&ctx))
                    .map_err(|e| format!("secret `{name}`: {e}"))?;
                next.insert(name.clone(), value);
            }
            current = next;
        }
        Ok(current)
    }
}
