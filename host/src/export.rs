//! `oddity plugin export`: writes the embedded component and its WIT contract, for other
//! component hosts (Node through jco, Python through wasmtime-py, wasmtime itself).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::plugin::EMBEDDED;

/// The WIT contract the embedded component implements (`wit/detector.wit`).
pub const CONTRACT: &str = include_str!("../../wit/detector.wit");

/// The file name of the contract, written beside the component.
pub const CONTRACT_FILE: &str = "detector.wit";

/// Why an export failed. The I/O errors name the file (they come from `fs_err`).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the component's file name is the contract's, {CONTRACT_FILE}: choose another")]
    ContractName,
    #[error("cannot write the component: {0}")]
    Component(std::io::Error),
    #[error("cannot write the WIT contract: {0}")]
    Contract(std::io::Error),
}

/// What an export wrote.
#[derive(Debug)]
pub struct Exported {
    pub component: PathBuf,
    pub contract: PathBuf,
}

impl fmt::Display for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "oddity: wrote the component to {} ({} bytes, {}) and its WIT contract to {}",
            self.component.display(),
            EMBEDDED.len(),
            package(),
            self.contract.display()
        )
    }
}

/// The contract's package and version, as its `package` line names them.
pub fn package() -> &'static str {
    CONTRACT
        .lines()
        .find_map(|l| l.strip_prefix("package "))
        .map_or("?", |rest| rest.trim_end_matches(';'))
}

/// Writes the embedded component to `output` and the contract beside it, as [`CONTRACT_FILE`].
pub fn export(output: &Path) -> Result<Exported, ExportError> {
    if output.file_name().is_some_and(|n| n == CONTRACT_FILE) {
        return Err(ExportError::ContractName);
    }
    let contract = output.with_file_name(CONTRACT_FILE);
    fs_err::write(output, EMBEDDED).map_err(ExportError::Component)?;
    fs_err::write(&contract, CONTRACT).map_err(ExportError::Contract)?;
    Ok(Exported {
        component: output.to_owned(),
        contract,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_is_read_from_the_contract() {
        assert!(package().starts_with("oddity:detector@"), "{}", package());
    }
}
