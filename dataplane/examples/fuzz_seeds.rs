//! Writes every reference frame into a directory as a fuzzing seed (a filter-knob byte,
//! 0 or the directed-broadcast knob, followed by the frame), so the fuzzer starts from
//! frames that reach deep into the classifier instead of from random bytes.
//!
//! Run: `cargo run -p dataplane --example fuzz_seeds -- DIR`

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "dataplane/fuzz/corpus/classify".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let frames = dataplane::reference::reference_frames();
    for (index, frame) in frames.iter().enumerate() {
        // The fuzz target's knob 128 turns on the reference interface's broadcasts.
        let knobs = if frame.filter.broadcasts.is_empty() {
            0
        } else {
            128
        };
        let mut seed = vec![knobs];
        seed.extend_from_slice(&frame.bytes);
        std::fs::write(dir.join(format!("reference-{index:03}")), seed)?;
    }
    println!("wrote {} seeds to {}", frames.len(), dir.display());
    Ok(())
}
