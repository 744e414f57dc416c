//! What every layer may use: settings read once from the environment, external processes,
//! process-wide cleanup, async work run from drop guards, error chains and generated names. Depends on nothing else in the
//! harness.

pub mod cleanup;
pub mod detached;
pub mod errors;
pub mod names;
pub mod process;
pub mod settings;
