//! `oddity plugin export`: writes the embedded component, its WIT contract and the note's JSON
//! Schema, for other component hosts (Node through jco, Python through wasmtime-py, wasmtime).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::plugin::EMBEDDED;

/// The WIT contract the embedded component implements (`wit/detector.wit`).
pub const CONTRACT: &str = include_str!("../../wit/detector.wit");

/// The file name of the contract, written beside the component.
pub const CONTRACT_FILE: &str = "detector.wit";

/// The JSON Schema of the notes `judge` gives (`wit/note.schema.json`).
pub const SCHEMA: &str = include_str!("../../wit/note.schema.json");

/// The file name of the schema, written beside the component.
pub const SCHEMA_FILE: &str = "note.schema.json";

/// Why an export failed. The I/O errors name the file (they come from `fs_err`).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "the component's file name is {CONTRACT_FILE} or {SCHEMA_FILE}, written beside it: choose another"
    )]
    ContractName,
    #[error("cannot write the component: {0}")]
    Component(std::io::Error),
    #[error("cannot write the WIT contract: {0}")]
    Contract(std::io::Error),
    #[error("cannot write the note's JSON Schema: {0}")]
    Schema(std::io::Error),
}

/// What an export wrote.
#[derive(Debug)]
pub struct Exported {
    pub component: PathBuf,
    pub contract: PathBuf,
    pub schema: PathBuf,
}

impl fmt::Display for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "oddity: wrote the component to {} ({} bytes, {}), its WIT contract to {} and the note's JSON Schema to {}",
            self.component.display(),
            EMBEDDED.len(),
            package(),
            self.contract.display(),
            self.schema.display()
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

/// Writes the embedded component to `output`, and beside it the contract ([`CONTRACT_FILE`])
/// and the note's schema ([`SCHEMA_FILE`]).
pub fn export(output: &Path) -> Result<Exported, ExportError> {
    if output
        .file_name()
        .is_some_and(|n| n == CONTRACT_FILE || n == SCHEMA_FILE)
    {
        return Err(ExportError::ContractName);
    }
    let contract = output.with_file_name(CONTRACT_FILE);
    let schema = output.with_file_name(SCHEMA_FILE);
    fs_err::write(output, EMBEDDED).map_err(ExportError::Component)?;
    fs_err::write(&contract, CONTRACT).map_err(ExportError::Contract)?;
    fs_err::write(&schema, SCHEMA).map_err(ExportError::Schema)?;
    Ok(Exported {
        component: output.to_owned(),
        contract,
        schema,
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
