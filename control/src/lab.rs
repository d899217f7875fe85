//! The demo's virtual lab: the [`netlab`] lab every end-to-end test uses, with the
//! reflector on one end and the test head on the other, so the whole path (XDP
//! included) runs on one machine without a NIC or cable.
//!
//! ```text
//!   netns NAME-r                 netns NAME-h
//!   [NAME-r] <----- veth -----> [NAME-h]
//!   reflector  192.0.2.2         192.0.2.1  reflector probe, STAMP sender
//! ```

pub use netlab::{Lab, LabError, HEAD_MAC, REFLECTOR_IP, REFLECTOR_MAC};

/// Build the demo's lab `name`, replacing one a demo killed before it could clean up
/// left behind. Dropping the lab removes it again (the demo does on Ctrl-C).
pub fn create(name: &str) -> Result<Lab, LabError> {
    if Lab::exists(name) {
        tracing::info!("removing the stale lab {name} a previous run left behind");
    }
    Lab::create(name)
}
