//! The offline platform: frames come from a pcap file and reflected frames go to
//! another, so reflection can be checked on any OS without a NIC.

use dataplane::{Flow, Platform};
use pcap::{Capture, Linktype, Offline, Packet, PacketHeader, Savefile};
use std::path::Path;

/// Errors reading or writing capture files.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("cannot open capture {path}: {source}")]
    Open { path: String, source: pcap::Error },
    #[error("cannot create {path}: {source}")]
    Create { path: String, source: pcap::Error },
    #[error(
        "{path} holds {linktype} frames; the reflector reads Ethernet (DLT_EN10MB) captures only"
    )]
    NotEthernet { path: String, linktype: String },
    #[error("--read and --write both name {path}; writing would truncate the capture before it is read: write to another file")]
    SameFile { path: String },
    #[error("reading capture: {0}")]
    Read(pcap::Error),
    #[error("writing capture: {0}")]
    Write(pcap::Error),
}

/// A frame read from the capture, with its original timestamp and length.
#[derive(Debug)]
pub struct OfflineFrame {
    header: PacketHeader,
    data: Vec<u8>,
}

/// Reads `--read`, writes reflected frames to `--write` with their original timestamps.
pub struct PcapFilePlatform {
    input: Capture<Offline>,
    output: Savefile,
    /// Recycled frame buffers, so a long capture costs no allocation per frame.
    pool: Vec<Vec<u8>>,
    batch_size: usize,
}

impl PcapFilePlatform {
    pub const BATCH_SIZE: usize = 64;

    pub fn open(input: &Path, output: &Path) -> Result<Self, OfflineError> {
        let path = input.display().to_string();
        if same_file(input, output) {
            return Err(OfflineError::SameFile { path });
        }
        let capture = Capture::from_file(input).map_err(|source| OfflineError::Open {
            path: path.clone(),
            source,
        })?;
        let linktype = capture.get_datalink();
        if linktype != Linktype::ETHERNET {
            let name = linktype
                .get_name()
                .unwrap_or_else(|_| format!("link type {}", linktype.0));
            return Err(OfflineError::NotEthernet {
                path,
                linktype: name,
            });
        }
        let create = |source| OfflineError::Create {
            path: output.display().to_string(),
            source,
        };
        let output = Capture::dead(Linktype::ETHERNET)
            .and_then(|dead| dead.savefile(output))
            .map_err(create)?;
        Ok(PcapFilePlatform {
            input: capture,
            output,
            pool: Vec::new(),
            batch_size: Self::BATCH_SIZE,
        })
    }

    /// Flush the output file; call after the last batch.
    pub fn finish(mut self) -> Result<(), OfflineError> {
        self.output.flush().map_err(OfflineError::Write)
    }

    fn recycle(&mut self, frames: &mut Vec<OfflineFrame>) {
        self.pool.extend(frames.drain(..).map(|frame| frame.data));
    }
}

impl Platform for PcapFilePlatform {
    type Frame = OfflineFrame;
    type Error = OfflineError;

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn recv_batch(&mut self, frames: &mut Vec<OfflineFrame>) -> Result<Flow, OfflineError> {
        for _ in 0..self.batch_size {
            let packet = match self.input.next_packet() {
                Ok(packet) => packet,
                Err(pcap::Error::NoMorePackets) => return Ok(Flow::Exhausted),
                Err(e) => return Err(OfflineError::Read(e)),
            };
            let mut data = self.pool.pop().unwrap_or_default();
            data.clear();
            data.extend_from_slice(packet.data);
            frames.push(OfflineFrame {
                header: *packet.header,
                data,
            });
        }
        Ok(Flow::Open)
    }

    fn with_frame<R>(&mut self, frame: &mut OfflineFrame, f: impl FnOnce(&mut [u8]) -> R) -> R {
        f(&mut frame.data)
    }

    fn send_batch(&mut self, frames: &mut Vec<OfflineFrame>) -> Result<usize, OfflineError> {
        for frame in frames.iter() {
            self.output.write(&Packet::new(&frame.header, &frame.data));
        }
        let sent = frames.len();
        self.recycle(frames);
        Ok(sent)
    }

    fn release_batch(&mut self, frames: &mut Vec<OfflineFrame>) {
        self.recycle(frames);
    }
}

/// Reflect every frame of `input` into `output`; returns the totals and telemetry.
/// Whether two paths reach one file, through symbolic or hard links too. A path that
/// does not exist yet (the usual `--write`) is never the input.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

pub fn reflect_file(
    input: &Path,
    output: &Path,
    config: &dataplane::WorkerConfig,
) -> Result<(dataplane::Counters, dataplane::Telemetry), OfflineError> {
    let platform = PcapFilePlatform::open(input, output)?;
    let shared = std::sync::Arc::new(dataplane::WorkerShared::default());
    let mut worker = dataplane::Worker::new(platform, config, shared.clone());
    worker.run(&std::sync::atomic::AtomicBool::new(false))?;
    let totals = *worker.counters();
    worker.into_platform().finish()?;
    Ok((totals, shared.telemetry()))
}
