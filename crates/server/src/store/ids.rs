//! Row ids: random, 16 bytes in hex, with a prefix naming the table (`run_3f…`), so an id in a
//! log line or a URL says what it is. Each table has its own newtype; the store never mixes them.
//!
//! Ids are not validated when parsed from a URL: an id that does not exist is simply not found.

use serde::{Deserialize, Serialize};
use std::fmt;

/// 16 random bytes from the thread's CSPRNG, as 32 hex digits.
pub(crate) fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix of every id of this kind.
            pub const PREFIX: &'static str = $prefix;

            /// A new random id.
            pub fn generate() -> $name {
                $name(format!("{}{}", $prefix, random_hex()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> $name {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A registered repository (`repo_…`).
    RepositoryId,
    "repo_"
);
id_type!(
    /// A stored webhook delivery (`dlv_…`); not the forge's own delivery id.
    DeliveryId,
    "dlv_"
);
id_type!(
    /// A run: one triggering of one workflow (`run_…`).
    RunId,
    "run_"
);
id_type!(
    /// One attempt of one leg of one job of a run (`job_…`).
    JobId,
    "job_"
);
id_type!(
    /// A registered agent (`agt_…`).
    AgentId,
    "agt_"
);
id_type!(
    /// The assignment of a job to an agent (`lse_…`). Only the agent that claimed the job
    /// receives it; every write about the job must carry it. Never show it to users.
    LeaseId,
    "lse_"
);
id_type!(
    /// An agent registration token (`reg_…`); the token itself is only stored hashed.
    RegistrationTokenId,
    "reg_"
);
id_type!(
    /// An API token (`tok_…`); the token itself is only stored hashed.
    ApiTokenId,
    "tok_"
);
id_type!(
    /// A stored secret (`sec_…`).
    SecretId,
    "sec_"
);
id_type!(
    /// A commit status waiting in the outbox (`sts_…`).
    StatusId,
    "sts_"
);

impl LeaseId {
    /// A fresh lease for a job claimed by `agent`: `lse_<random>.<agent id>`. The agent it was
    /// issued to is part of it, so a write under it can be checked against the caller without
    /// reading the job.
    pub fn for_agent(agent: &AgentId) -> LeaseId {
        LeaseId(format!("lse_{}.{}", random_hex(), agent.as_str()))
    }

    /// The agent this lease was issued to (`None` for leases from before agents were named in
    /// them).
    pub fn issued_to(&self) -> Option<&str> {
        self.0.rsplit_once('.').map(|(_, agent)| agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_names_the_agent_it_was_issued_to() {
        let agent = AgentId::generate();
        let lease = LeaseId::for_agent(&agent);
        assert!(lease.as_str().starts_with("lse_"));
        assert_eq!(lease.issued_to(), Some(agent.as_str()));
        assert_ne!(LeaseId::for_agent(&agent), lease);
        assert_eq!(LeaseId::generate().issued_to(), None);
    }

    #[test]
    fn generated_ids_carry_their_prefix_and_differ() {
        let a = RunId::generate();
        let b = RunId::generate();
        assert!(a.as_str().starts_with("run_"));
        assert_eq!(a.as_str().len(), 4 + 32);
        assert_ne!(a, b);
    }
}
