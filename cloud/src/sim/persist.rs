//! Saving and loading a [`SimCloud`]'s resources, so that a `canon dev`
//! restart finds the cloud it left (same ids) instead of rebuilding it.
//! Files are JSON, written atomically (a temporary file, synced, then
//! renamed over the old one). Faults, scripted failures and the mutation
//! log are not saved: they belong to one run.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::region::RegionState;
use super::SimCloud;
use crate::Scope;

/// The format this build writes and reads.
const FORMAT: u32 = 1;

/// A saved cloud.
#[derive(Serialize, Deserialize)]
struct Saved {
    format: u32,
    /// Seeds the id generator after a load, so the restarted cloud goes on
    /// exactly as the saved one would have (and never repeats an id).
    rng_seed: u64,
    regions: Vec<(Scope, RegionState)>,
}

/// Why the cloud could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read the simulated cloud's state {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the simulated cloud's state {path} is damaged ({reason}); move it away to start \
         with an empty cloud (Canon will then rebuild every process's resources)"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write the simulated cloud's state {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SimCloud {
    /// Writes every account and region's resources to `path`, atomically.
    pub fn save(&self, path: &Path) -> Result<(), PersistError> {
        let bytes = {
            let mut inner = self.lock();
            // Re-seed here so that the saved seed is where this cloud goes on.
            let rng_seed: u64 = inner.rng.random();
            inner.rng = ChaCha8Rng::seed_from_u64(rng_seed);
            let saved = Saved {
                format: FORMAT,
                rng_seed,
                regions: inner
                    .regions
                    .iter()
                    .map(|(s, r)| (s.clone(), r.clone()))
                    .collect(),
            };
            serde_json::to_vec(&saved).map_err(|e| PersistError::Write {
                path: path.to_path_buf(),
                source: std::io::Error::other(e),
            })?
        };
        let write = |source| PersistError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        {
            let mut f = std::fs::File::create(&tmp).map_err(write)?;
            f.write_all(&bytes).map_err(write)?;
            f.sync_all().map_err(write)?;
        }
        std::fs::rename(&tmp, path).map_err(write)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Makes the rename durable; not every platform can sync a
            // directory, and the data is already safe in the file.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Replaces this cloud's resources with those saved in `path`. Returns
    /// false (changing nothing) if there is no such file.
    pub fn load(&self, path: &Path) -> Result<bool, PersistError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(PersistError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let corrupt = |reason: String| PersistError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let saved: Saved = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if saved.format != FORMAT {
            return Err(corrupt(format!(
                "format {} is not {FORMAT}, the one this build reads",
                saved.format
            )));
        }
        let mut inner = self.lock();
        inner.rng = ChaCha8Rng::seed_from_u64(saved.rng_seed);
        inner.regions = saved.regions.into_iter().collect();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canon_model::{Action, Tags, Tenancy};

    fn scope() -> Scope {
        Scope::new("123456789012", "us-west-2")
    }

    fn create_vpc(sim: &SimCloud, block: &str) -> String {
        let mut tags = Tags::new();
        tags.insert("Name".into(), block.into());
        sim.rogue(
            &scope(),
            &Action::CreateVpc {
                cidr_block: block.parse().unwrap(),
                instance_tenancy: Tenancy::Default,
                amazon_provided_ipv6_cidr_block: false,
                tags,
            },
        )
        .unwrap()
        .cloud_id
        .unwrap()
    }

    #[test]
    fn a_loaded_cloud_has_the_same_resources_and_goes_on_with_new_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloud.json");
        let sim = SimCloud::new(1);
        let vpc = create_vpc(&sim, "10.0.0.0/16");
        sim.save(&path).unwrap();
        let next_here = create_vpc(&sim, "10.1.0.0/16");

        // Same seed, as a restarted dev cluster has: without the saved
        // state it would hand out the first id again.
        let again = SimCloud::new(1);
        assert!(again.load(&path).unwrap());
        assert_eq!(again.describe(&scope(), &vpc), sim.describe(&scope(), &vpc));
        assert!(again.describe(&scope(), &vpc).is_some());
        let next_there = create_vpc(&again, "10.1.0.0/16");
        assert_ne!(next_there, vpc);
        assert_eq!(
            next_there, next_here,
            "the loaded cloud goes on as the saved one"
        );
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn no_file_is_an_empty_cloud_and_a_damaged_one_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloud.json");
        let sim = SimCloud::new(1);
        assert!(!sim.load(&path).unwrap());
        std::fs::write(&path, b"{\"format\": 1, \"rng_").unwrap();
        let e = sim.load(&path).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("damaged"), "{e}");
        std::fs::write(&path, b"{\"format\": 9, \"rng_seed\": 1, \"regions\": []}").unwrap();
        let e = sim.load(&path).unwrap_err().to_string();
        assert!(e.contains("format 9"), "{e}");
    }
}
