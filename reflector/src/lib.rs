//! The `reflector` worker binary's pieces, as a library so the control plane shares
//! the JSON stats types ([`report::Event`]) and tests can drive each part.

pub mod cli;
pub mod offline;
pub mod probe;
pub mod report;
