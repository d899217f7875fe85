//! The reflector loop, generic over [`Platform`]: receive a batch, classify and reflect
//! each frame in place, send the reflected ones, release the rest, publish counters.

use crate::classify::classify;
use crate::filter::Filter;
use crate::platform::{Flow, Platform};
use crate::reflect::{reflect, Mode};
use crate::stats::{Counters, SharedCounters};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One reflector worker, owning one platform queue.
pub struct Worker<P: Platform> {
    platform: P,
    filter: Filter,
    mode: Mode,
    counters: Counters,
    shared: Arc<SharedCounters>,
    received: Vec<P::Frame>,
    to_send: Vec<P::Frame>,
    /// Byte length of each frame in `to_send`, to uncount the ones TX refuses.
    to_send_lens: Vec<usize>,
    to_release: Vec<P::Frame>,
}

impl<P: Platform> Worker<P> {
    pub fn new(platform: P, filter: Filter, mode: Mode, shared: Arc<SharedCounters>) -> Self {
        let batch = platform.batch_size();
        Worker {
            platform,
            filter,
            mode,
            counters: Counters::default(),
            shared,
            received: Vec::with_capacity(batch),
            to_send: Vec::with_capacity(batch),
            to_send_lens: Vec::with_capacity(batch),
            to_release: Vec::with_capacity(batch),
        }
    }

    /// Process batches until `stop` is set or the platform is exhausted.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), P::Error> {
        while !stop.load(Ordering::Relaxed) {
            if self.poll()? == Flow::Exhausted {
                break;
            }
        }
        Ok(())
    }

    /// Receive and process one batch.
    pub fn poll(&mut self) -> Result<Flow, P::Error> {
        let flow = self.platform.recv_batch(&mut self.received)?;
        if self.received.is_empty() {
            return Ok(flow);
        }
        let (filter, mode) = (self.filter, self.mode);
        let counters = &mut self.counters;
        let lens = &mut self.to_send_lens;
        for mut frame in self.received.drain(..) {
            let verdict = self.platform.with_frame(&mut frame, |bytes| {
                counters.received += 1;
                counters.rx_bytes += bytes.len() as u64;
                let verdict = classify(bytes, &filter);
                match verdict {
                    Ok(accepted) => {
                        reflect(bytes, &accepted.layout, mode);
                        counters.reflected += 1;
                        counters.tx_bytes += bytes.len() as u64;
                        counters.per_signature[accepted.signature.index()] += 1;
                        lens.push(bytes.len());
                    }
                    Err(reason) => counters.per_reject[reason.index()] += 1,
                }
                verdict.is_ok()
            });
            if verdict {
                self.to_send.push(frame);
            } else {
                self.to_release.push(frame);
            }
        }
        if !self.to_send.is_empty() {
            let queued = self.to_send.len();
            let sent = self.platform.send_batch(&mut self.to_send)?;
            // `reflected` counts frames handed to the transmitter; the ones it refused
            // are tx errors instead.
            let unsent = (queued - sent) as u64;
            self.counters.tx_errors += unsent;
            self.counters.reflected -= unsent;
            self.counters.tx_bytes -= self.to_send_lens[sent..].iter().sum::<usize>() as u64;
            self.to_send_lens.clear();
        }
        if !self.to_release.is_empty() {
            self.platform.release_batch(&mut self.to_release);
        }
        self.shared.publish(&self.counters);
        Ok(flow)
    }

    /// This worker's totals so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn platform(&self) -> &P {
        &self.platform
    }

    pub fn into_platform(self) -> P {
        self.platform
    }
}
