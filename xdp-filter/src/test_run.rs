//! Running a loaded XDP program in the kernel on test input (BPF_PROG_TEST_RUN), and
//! its length after the verifier: one way for every program of this crate, so that
//! benchmarks measure the reflector's program and the XDP_TX baseline alike.

use crate::{bpf_error, Result};
use libbpf_rs::query::{ProgInfoIter, ProgInfoQueryOptions};
use libbpf_rs::{ProgramInput, ProgramMut};
use std::os::fd::AsFd;
use std::time::Duration;

/// What one BPF_PROG_TEST_RUN of a program returned.
pub(crate) struct Ran {
    /// The XDP action of the last run.
    pub action: u32,
    /// The kernel's mean time per run.
    pub per_run: Duration,
    /// The metadata and the frame as the last run left them, in that order.
    pub out: Vec<u8>,
}

/// Run `program` `repeat` times on `frame` in the kernel (BPF_PROG_TEST_RUN; each run
/// sees the frame as the previous one left it). The program's own counters count every
/// run, as for received frames.
pub(crate) fn test_run(program: &ProgramMut<'_>, frame: &[u8], repeat: u32) -> Result<Ran> {
    // The kernel returns the metadata and the frame together; room for both (the
    // kernel's limit on metadata is below a byte's range).
    let mut out = vec![0u8; 256 + frame.len()];
    let input = ProgramInput {
        data_in: Some(frame),
        data_out: Some(&mut out),
        repeat,
        ..ProgramInput::default()
    };
    let output = program
        .test_run(input)
        .map_err(bpf_error("test-run the XDP program"))?;
    let (action, per_run) = (output.return_value, output.duration);
    let len = output.data.map_or(0, |data| data.len());
    out.truncate(len);
    Ok(Ran {
        action,
        per_run,
        out,
    })
}

/// How long a loaded program is after the verifier removed what its configuration
/// never runs (subprograms included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramSize {
    /// Translated BPF instructions.
    pub insns: usize,
    /// Bytes of native code the JIT made of them.
    pub jited_bytes: usize,
}

/// The size of `program`, which is loaded.
pub(crate) fn program_size(program: &ProgramMut<'_>) -> Result<ProgramSize> {
    let what = "read the XDP program's info";
    let id = libbpf_rs::Program::id_from_fd(program.as_fd()).map_err(bpf_error(what))?;
    let options = ProgInfoQueryOptions::default()
        .include_xlated_prog_insns(true)
        .include_jited_prog_insns(true);
    let info = ProgInfoIter::with_query_opts(options).find(|info| info.id == id);
    // The program is loaded while its skeleton lives, so the kernel lists it.
    let info = info.expect("a loaded program is in the kernel's list");
    Ok(ProgramSize {
        insns: info.xlated_prog_insns.len()
            / std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_insn>(),
        jited_bytes: info.jited_prog_insns.len(),
    })
}
